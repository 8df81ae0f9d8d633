"""Numbers as a student reads them: 1.3e-07 rather than 0.0000."""

from django import template

from grader.outcomes import format_number

register = template.Library()


@register.filter
def sig(value) -> str:
    """Four significant digits, scientific notation for tiny and huge values; '' for None."""
    if value is None or value == "":
        return ""
    try:
        return format_number(float(value))
    except (TypeError, ValueError):
        return str(value)
