"""The TFX/TFRS "recommenders" tutorial's pipeline, rebuilt as a yardstick.

`benchmarks.pipeline_speed` times it against the project's pipeline on the
same data and machine. It keeps the tutorial's shape and costs (CSV in,
statistics, inferred schema, validation, vocabularies in Transform, a
two-tower retrieval model on ids only, a brute-force index, a push to a
folder) and none of the project's extras, so the difference in time is what
those extras cost.

  python -m benchmarks.tutorial.pipeline --data-dir data/ml-100k \\
      --work-dir benchmarks/work/speed/tutorial
"""
