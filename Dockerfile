# nvc-mri: a DICOM node beside the PACS (default) or one-shot analyses of mounted folders.
#   docker build -t nvc-mri .                                   CPU PyTorch (default)
#   docker build -t nvc-mri:cuda --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 \
#                --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 .
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    VENV=/opt/venv \
    SOURCE=/opt/nvc-mri \
    PATH=/opt/venv/bin:$PATH \
    NVC_AE_TITLE=NVC \
    NVC_PORT=11112 \
    NVC_SPOOL=/spool \
    NVC_DESTINATION=PACS@pacs:104

# CUDA base images have no Python; the slim Python image has it already.
RUN (command -v python3 >/dev/null && python3 -m venv --help >/dev/null) || \
    (apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*)

COPY pyproject.toml README.md /opt/nvc-mri/
COPY configs /opt/nvc-mri/configs
COPY nvc_mri /opt/nvc-mri/nvc_mri
COPY docker/install.sh /opt/nvc-mri/docker/install.sh
RUN TORCH_SPEC="${TORCH_SPEC}" TORCH_INDEX="${TORCH_INDEX}" sh /opt/nvc-mri/docker/install.sh

RUN useradd --create-home --uid 10001 nvc && mkdir -p /spool /data && chown nvc:nvc /spool /data
USER nvc
VOLUME ["/spool"]
EXPOSE 11112
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["nvc-mri", "health"]
ENTRYPOINT ["nvc-mri"]
CMD ["serve"]
