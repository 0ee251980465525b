"""The ports a component has as a top-level design (for Verilog/RTLIL conversion)."""

from amaranth.hdl import Const, Value

__all__ = ["top_ports"]


def top_ports(component) -> list[Value] | None:
    """Every port of ``component``'s signature except constants; ``None`` (Amaranth's
    default ports) when it has no constant member or no signature.

    A stream declared ``always_ready=True`` (or ``always_valid``) has a constant ``ready``
    (``valid``) member; Amaranth cannot make a constant a port of a top-level design, so
    converting such a component with its default ports fails. The constant is part of the
    contract, not a wire: leave it out.
    """
    signature = getattr(component, "signature", None)
    if signature is None:
        return None
    values = [Value.cast(value) for _, _, value in signature.flatten(component)]
    ports = [value for value in values if not isinstance(value, Const)]
    return ports if len(ports) < len(values) else None
