"""Local fine-tuning: LoRA training in a child process, GGUF adapter export, evaluation, promotion."""
