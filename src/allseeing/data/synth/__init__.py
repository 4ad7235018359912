"""The synthetic world: procedurally drawn scenes with exact boxes and geometric relations, written as
LLaVA-format training data and upstream-format evaluation files (``allseeing synth``)."""
