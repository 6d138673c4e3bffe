# The lume-services image: one image for the REST server, the Prefect worker and the event delivery.
#
#   docker build -t lume-services:dev .
#   docker run --rm -p 8080:8080 -e LUME_MODEL_DB__URL=... lume-services:dev                 # serve (the default)
#   docker run --rm -e LUME_MODEL_DB__URL=... -e LUME_PREFECT__API_URL=... lume-services:dev worker
#   docker run --rm -e LUME_MODEL_DB__URL=... lume-services:dev events deliver
#   docker run --rm -e LUME_MODEL_DB__URL=... lume-services:dev db upgrade                   # before a new version serves
#
# Two stages: the build stage installs the versions pinned in uv.lock (`uv sync --locked`: the build
# fails if uv.lock is not current) into /app/.venv; the runtime stage copies that environment alone
# and runs as an unprivileged user. Both stages use the same Python base image, so the environment's
# interpreter links stay valid. Uses no BuildKit-only syntax (it was built with the classic builder too).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The uv that installs the image; the environment gets its own uv from uv.lock (it builds the
# deployments' environments at run time).
ARG UV_VERSION=0.13.9
ARG EXTRAS="--extra server --extra postgresql --extra mapping"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
WORKDIR /src
# The dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --locked --no-install-project --no-editable --python python3 ${EXTRAS}
COPY lume_services ./lume_services
RUN /opt/uv/bin/uv sync --locked --no-editable --python python3 ${EXTRAS} \
    && /app/.venv/bin/lume-services --version

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 lume \
    && useradd --uid 10001 --gid lume --home-dir /home/lume --create-home --shell /usr/sbin/nologin lume
COPY --from=build /app/.venv /app/.venv
# LUME_HOME holds the artifact store and the deployments' environments (a volume in compose);
# the server listens on every interface inside the container (publish the port to choose who reaches it).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    LUME_HOME=/home/lume/.lume-services \
    LUME_API__HOST=0.0.0.0 \
    LUME_API__PORT=8080
USER 10001:10001
WORKDIR /home/lume
RUN mkdir -p /home/lume/.lume-services
EXPOSE 8080
ENTRYPOINT ["lume-services"]
CMD ["serve"]
