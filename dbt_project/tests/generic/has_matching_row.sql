{#- Every row of the model has a row in `to` with the same values of `columns` (a composite relationships test). -#}
{% test has_matching_row(model, to, columns) %}

with child as (

    select * from {{ model }}

)

select {{ columns | join(', ') }}
from child
where not exists (
    select 1
    from {{ to }} as parent
    where
        {%- for column in columns %}
        parent.{{ column }} = child.{{ column }}{{ " and" if not loop.last }}
        {%- endfor %}
)

{% endtest %}
