"""LightningDataModules and dataset code: each says what it yields (``zoo.spec``) so that a task can size its net."""
