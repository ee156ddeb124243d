# GPU training image: CUDA 13 PyTorch wheels (they bring their CUDA libraries) and DALI for CUDA 13.
# Build:  docker build -t cxr-lt .                       (add --build-arg BAKE_WEIGHTS=1 to bake ImageNet weights)
# Run:    docker run --gpus all --shm-size 16g --stop-timeout 60 -v /data/shards:/shards:ro -v /data/runs:/runs \
#           cxr-lt train fit --shards /shards/nih-256 --method rw-ldam-drw --out /runs/rw-ldam-drw
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 TORCH_HOME=/opt/torch
RUN useradd --create-home --uid 1000 cxr && mkdir -p /opt/torch && chown cxr /opt/torch
WORKDIR /opt/cxr-lt

# torch first (the largest layer, cached across code changes), pinned like scripts/setup.sh
RUN pip install "torch==2.14.1" "torchvision==0.29.1"
COPY pyproject.toml README.md ./
COPY cxr_lt cxr_lt
COPY ingest ingest
COPY shards shards
COPY train train
COPY eval eval
RUN pip install ".[dali]"

# Jobs need no internet when the ImageNet ResNet-50 weights are in the image.
ARG BAKE_WEIGHTS=0
RUN if [ "$BAKE_WEIGHTS" = "1" ]; then \
      python -c "import torchvision.models as m; m.ResNet50_Weights.IMAGENET1K_V1.get_state_dict(progress=False)"; \
    fi && chown -R cxr /opt/torch

USER cxr
# SIGTERM checkpoints at the next step: give `docker stop` / Kubernetes at least 60 s (--stop-timeout 60).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m"]
CMD ["train", "--help"]
