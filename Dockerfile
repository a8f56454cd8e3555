# faber-db in a container, for pipelines that run their steps in containers: the release binary
# (checked against the release's SHA256SUMS by scripts/install.sh) with the PostgreSQL client
# tools of the major version you pick (from apt.postgresql.org) and the MariaDB client of the
# Debian release you pick (bookworm: 10.11, trixie: 11.8). See docs/install.md.
#
#   docker build -t faber-db --build-arg PG_MAJOR=16 --build-arg DEBIAN_RELEASE=bookworm .
#   docker run --rm -v "$PWD:/work" -e PROD_DATABASE_URL faber-db backup production
ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE}-slim

ARG DEBIAN_RELEASE
ARG PG_MAJOR=17
ARG FABER_DB_VERSION=0.1.0

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
    && install -d /etc/apt/keyrings \
    && curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc \
        | gpg --dearmor -o /etc/apt/keyrings/pgdg.gpg \
    && echo "deb [signed-by=/etc/apt/keyrings/pgdg.gpg] https://apt.postgresql.org/pub/repos/apt ${DEBIAN_RELEASE}-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" mariadb-client \
    && apt-get purge -y gnupg \
    && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*

COPY scripts/install.sh /tmp/install.sh
RUN sh /tmp/install.sh --version "${FABER_DB_VERSION}" --dir /usr/local/bin \
    && rm /tmp/install.sh \
    && faber-db --version

WORKDIR /work
ENTRYPOINT ["faber-db"]
CMD ["--help"]
