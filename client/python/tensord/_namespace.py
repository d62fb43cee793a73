"""Builds the torch-like op namespaces (tensord.fft, tensord.linalg, tensord.special): each
exposes the daemon's ops of one family under PyTorch's names, as functions generated from the
op table (inputs first, then the op's attributes in schema order or by keyword)."""


def family_getattr(module_name, names, aliases=None):
    """Returns a module-level __getattr__ for a namespace module: `names` are ops published
    under the same name, `aliases` maps PyTorch names to op names (special.gammaln -> lgamma).
    """
    aliases = dict(aliases or {})
    published = set(names) | set(aliases)

    def __getattr__(attr):
        if attr in published:
            from .client import default_client
            from .ops import make_op_function
            op = aliases.get(attr, attr)
            c = default_client(required=False)
            if c is None or op in c.schema():
                return make_op_function(op)
        raise AttributeError("module %r has no attribute %r" % (module_name, attr))

    def __dir__():
        return sorted(published)

    return __getattr__, __dir__
