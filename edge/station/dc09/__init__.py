"""SIA DC-09 bridge: every stored event to an alarm receiver (:mod:`.bridge`: the store's
events in order, NULL supervision messages), through the codec and link the box's own
DC-09 route uses too (:mod:`edge.dc09`).
"""
