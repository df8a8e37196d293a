"""Operations code: the Kubernetes manifests, Grafana dashboard and Prometheus alerts generated from tables, and
the offline validation of the k8s/ overlays. `python -m ops --help` lists the commands."""
