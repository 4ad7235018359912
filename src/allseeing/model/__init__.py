"""ASMv2 on the stock transformers LlavaForConditionalGeneration: presets, building, processor, conversion."""
