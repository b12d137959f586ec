"""The JSON Schemas in ``schemas/`` and the marshmallow schemas of ``wire.py`` agree.

Every schema file must be a valid draft 2020-12 schema that loads offline and has the
same members, required members and closed objects as its marshmallow mirror
(``test_shapes``); hand-built valid examples (and the valid claims of
``protocol/vectors/*.json``, when present) pass both; hand-built invalid variants fail
both; and random mutations of the valid examples get the same verdict from both
(``test_agreement``). The JSON Schema side is judged by ``jsonschema`` (with ECMA-262
pattern anchors) and, when installed, by ``jsonschema-rs`` (``engines``).
"""
