# syntax=docker/dockerfile:1
# scenarist: the HTTP API (`scenarist serve`) and the demo workers, from one image.
#   docker build -t scenarist .
#   docker run -e SCENARIST_STORE=redis://redis:6379/0 -e SCENARIST_TOKENS='[...]' scenarist

# --- build: install the package and its pinned dependencies into a virtualenv ---------
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies are pinned (==) in pyproject.toml; the demo extra brings Pillow and ffmpeg.
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install ".[demo]"

# --- runtime: the virtualenv only, run as an unprivileged user --------------------------
FROM python:3.11.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 scenarist \
    && useradd --system --uid 10001 --gid scenarist --create-home --home-dir /home/scenarist scenarist \
    && mkdir -p /artefacts \
    && chown scenarist:scenarist /artefacts
COPY --from=build /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SCENARIST_LOG_JSON=1
USER 10001:10001
WORKDIR /home/scenarist
EXPOSE 8001
ENTRYPOINT ["scenarist"]
# Listening beyond loopback needs SCENARIST_TOKENS (or --insecure); see compose.yaml.
CMD ["serve", "--host", "0.0.0.0", "--port", "8001"]
