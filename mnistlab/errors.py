"""Errors a user can cause: each message says what was wrong and what is allowed."""


class LabError(ValueError):
    """Base for every error whose message is meant to be shown to the user as is."""


class DataError(LabError):
    """The MNIST files are missing, damaged or inconsistent."""


class ConfigError(LabError):
    """An architecture, init, training setting or device that MNIST Lab does not accept."""


class ModelFileError(LabError):
    """A saved or uploaded model file that cannot be loaded."""


class ImageError(LabError):
    """A drawing or uploaded image that cannot be turned into a digit."""


class ClassError(ConfigError):
    """A class code, handle, key or secret, a challenge setting or a submission that a class refuses."""
