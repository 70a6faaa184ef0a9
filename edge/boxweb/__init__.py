"""The technician page's view of a running box: the adapters the Box hands to the web stage.

The web stage imports no other stage; the small classes here stand between it
and the cameras (latest frame, overlays), the config file (redacted view, check,
apply with rollback and probation) and the panel (walk test).
"""
