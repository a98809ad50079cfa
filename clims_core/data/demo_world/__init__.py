"""The demo world: a generated VOC-layout dataset that is hard the way PASCAL VOC is hard, plus a captions corpus.

Objects have a small distinctive part and a body shared with a partner class (partial activation), and live on
their home stuff most of the time while that stuff also appears without them (confounders); see DESIGN.md, "The demo
world". Modules: ``settings`` (the settings and their checks), ``looks`` (colour design), ``stuff`` (textures),
``sprites`` (object families), ``plan`` (what each image holds), ``scene`` and ``isolated`` (drawing), ``captions``
(text), ``writer`` (files), ``statistics``, ``world`` (the entry point).
"""

from clims_core.data.demo_world.settings import HOME_STUFF, KNOWN_CLASSES, KNOWN_STUFF, DemoWorldSettings
from clims_core.data.demo_world.world import generate_world

__all__ = ["HOME_STUFF", "KNOWN_CLASSES", "KNOWN_STUFF", "DemoWorldSettings", "generate_world"]
