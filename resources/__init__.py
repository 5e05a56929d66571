"""Files shipped with Flatchat: icons, stylesheets and the sample archive.

Load them with :mod:`importlib.resources` (``importlib.resources.files("resources")``), never
with paths relative to the working directory, so they are found however Flatchat is installed.
"""
