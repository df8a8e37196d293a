"""The evaluation grid: spec, expansion, results store, runner and backends (../shared/DESIGN.md, "Evaluation grid")."""
