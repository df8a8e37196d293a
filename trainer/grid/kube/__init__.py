"""The grid on a Kubernetes cluster: training stages as Jobs or KubeRay RayJobs, evaluation cells as Jobs, all
built from the k8s/ overlays, validated before they are sent, watched, and labelled so `shiftgym grid delete RUN`
removes them."""
