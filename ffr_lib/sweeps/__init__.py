"""Running many runs: grids and profiles, the plan of a sweep (its DAG, staged search, what the
store holds), scheduling and packing, executors, prefetching synthetic sets, and model selection
over the records. One run itself is ffr_lib.training's; nothing here imports back from a sweep
into training."""
