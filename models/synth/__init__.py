"""The synthetic coin world: a procedural mint and a top-down cup-scene renderer."""
