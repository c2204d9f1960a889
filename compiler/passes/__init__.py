"""Graph -> Graph passes and the pipeline that runs them (pipeline.py)."""
