"""The exceptions vmsim raises. Each carries vmsim's own message, which names the
option, file, line or field at fault and the value found there."""


class Error(Exception):
    """Something vmsim could not do; the base of every vmsim exception."""


class OptionError(Error, ValueError):
    """An option's name or value is not one vmsim takes (``ram="12XB"``, an unknown
    keyword, a policy vmsim does not know)."""


class MissingFileError(Error, FileNotFoundError):
    """A file given as an input (a trace, a state file) does not exist."""


class TraceError(Error, ValueError):
    """A trace cannot be read: its format cannot be told, or a line or record is
    malformed (the message names the file and the place)."""
