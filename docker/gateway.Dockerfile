# syntax=docker/dockerfile:1
# The 12345 hotline gateway: `hotline-gateway run` by default; `hotline-gateway order-sink` and
# every other subcommand (render, reload, check) run from the same image with another command.
#
#   docker compose -f docker/compose.yaml build gateway        (context: the repo root)
#
# No secret is baked in: AMI secrets and API tokens come from the environment at run time.
# Python 3.11, the version the test suite runs on (pyproject.toml: requires-python >= 3.11).
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid: dialplans/ on the host must be writable by it for `hotline-gateway reload`
# (docker/README.md).
ARG HOTLINE_UID=10001
ARG HOTLINE_GID=10001
RUN groupadd --system --gid "${HOTLINE_GID}" hotline \
 && useradd --system --uid "${HOTLINE_UID}" --gid hotline --home-dir /srv/hotline --no-create-home \
            --shell /usr/sbin/nologin hotline

# The package and its dependencies (all published as wheels: no compiler needed), then the
# source is dropped. gateway.Dockerfile.dockerignore sends only these files.
WORKDIR /tmp/hotline-src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir . \
 && rm -rf /tmp/hotline-src

# The working folder: the merge config (compose mounts the repo's copy over this default), the
# rendered dialplans/ (mounted, shared with Asterisk) and var/ (a volume: spool, order sink).
WORKDIR /srv/hotline
COPY hotline_merge.yaml ./
RUN install -d -o hotline -g hotline -m 0750 /srv/hotline/var \
 && install -d -o hotline -g hotline -m 0755 /srv/hotline/dialplans

USER ${HOTLINE_UID}:${HOTLINE_GID}
ENV HOTLINE_CONFIG=/srv/hotline/hotline_merge.yaml \
    HOTLINE_HTTP_PORT=8080
EXPOSE 8080

# No curl in the slim image: the standard library asks GET /healthz (non-2xx or no answer fails).
# compose.yaml replaces this check for order-sink, which has no /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HOTLINE_HTTP_PORT', '8080'), timeout=4).close()"]

ENTRYPOINT ["hotline-gateway"]
CMD ["run"]
