"""End-to-end tests: the CLI as processes, the PandaBoard model booted end to end, the benchmark
smoke run, the soaks (marked slow) and the User-Mode Linux kernel (marked kernel)."""
