"""The pipeline definition (`create_pipeline`) and its configuration."""
