# syntax=docker/dockerfile:1
# Asterisk 22 (LTS) for the 12345 hotline, as Alpine packages it: nothing is compiled here.
#
#   docker compose -f docker/compose.yaml build asterisk      (context: docker/)
#
# Alpine 3.24 is the first stable branch whose asterisk package is 22.x (22.9.0 when this was
# written); 3.22 ships 20.11 and 3.23 ships 20.15. The build stops if `asterisk -V` is not 22.x,
# so a base image with another major version can never slip through.
# The configuration baked in is docker/asterisk/*.conf. The rendered dialplan, the prompts, the
# seats and every secret arrive at run time (compose.yaml, asterisk-entrypoint.sh).
ARG ALPINE_VERSION=3.24
FROM alpine:${ALPINE_VERSION}

# A fixed uid/gid, so the host folders Asterisk writes (recordings/calls) and the AstDB volume
# have a known owner. Created before the package: its pre-install script keeps an existing
# asterisk user.
ARG ASTERISK_UID=10002
ARG ASTERISK_GID=10002
RUN addgroup -S -g "${ASTERISK_GID}" asterisk \
 && adduser -S -D -H -u "${ASTERISK_UID}" -G asterisk -h /var/lib/asterisk -s /sbin/nologin asterisk

# asterisk: the core, chan_pjsip and res_pjsip (Alpine links the system pjproject), app_queue,
# app_mixmonitor, app_confbridge, ... ; asterisk-sounds-en: beep and the core prompts;
# asterisk-sounds-moh: the default on-hold music (queues.conf musicclass = default).
# No asterisk-sample-config: /etc/asterisk holds only this repo's files.
# Versions are not pinned on purpose: the branch's security updates are wanted, and the
# check below refuses anything but 22.x.
# hadolint ignore=DL3018
RUN set -eu; \
    apk add --no-cache asterisk asterisk-sounds-en asterisk-sounds-moh; \
    version="$(asterisk -V)"; \
    echo "installed: ${version}"; \
    case "${version}" in \
      "Asterisk 22."*) ;; \
      *) echo "FATAL: this image needs Asterisk 22.x, the package gave '${version}'" >&2; exit 1 ;; \
    esac; \
    for module in chan_pjsip res_pjsip res_pjsip_session res_rtp_asterisk pbx_config app_queue \
        app_dial app_mixmonitor app_confbridge bridge_softmix app_playback app_read app_userevent \
        app_stack app_exec func_strings func_channel func_callerid func_dialplan res_musiconhold \
        format_wav format_gsm codec_alaw codec_ulaw; do \
      test -f "/usr/lib/asterisk/modules/${module}.so" \
        || { echo "FATAL: module ${module}.so is not in the package" >&2; exit 1; }; \
    done; \
    for beep in /var/lib/asterisk/sounds/en/beep.*; do \
      test -f "${beep}" || { echo "FATAL: asterisk-sounds-en has no beep" >&2; exit 1; }; \
    done; \
    test -d /var/lib/asterisk/moh \
      || { echo "FATAL: asterisk-sounds-moh installed no /var/lib/asterisk/moh" >&2; exit 1; }; \
    test "$(id -u asterisk)" = "${ASTERISK_UID}" \
      || { echo "FATAL: the asterisk user is not uid ${ASTERISK_UID}" >&2; exit 1; }

# Read by the asterisk group, written by nobody but the image build and the entrypoint (root).
COPY --chown=root:asterisk --chmod=0640 \
     asterisk/asterisk.conf asterisk/modules.conf asterisk/logger.conf asterisk/musiconhold.conf \
     asterisk/confbridge.conf asterisk/cdr.conf asterisk/cel.conf asterisk/rtp.conf \
     asterisk/pjsip.conf asterisk/extensions.conf asterisk/queues.conf asterisk/manager.conf \
     asterisk/features.conf asterisk/indications.conf \
     /etc/asterisk/
COPY --chmod=0755 asterisk-entrypoint.sh /usr/local/bin/hotline-asterisk-entrypoint

# Mount points (compose.yaml): rendered dialplan, prompts, call recordings, seats; the AstDB
# folder of asterisk.conf (a named volume that takes this owner on first use).
RUN chown root:asterisk /etc/asterisk \
 && chmod 0750 /etc/asterisk \
 && mkdir -p /etc/asterisk/hotline /var/lib/hotline/recordings/prompts /run/hotline/site \
        /var/lib/asterisk/astdb /var/lib/hotline/recordings/calls \
        /var/run/asterisk /var/log/asterisk /var/spool/asterisk \
 && chown asterisk:asterisk /var/lib/asterisk /var/lib/asterisk/astdb /var/lib/hotline/recordings/calls \
        /var/run/asterisk /var/log/asterisk /var/spool/asterisk \
 && chmod 0750 /var/lib/asterisk/astdb /var/lib/hotline/recordings/calls

# 5038 (AMI) is for the compose network only: compose.yaml never publishes it.
EXPOSE 5060/udp 5060/tcp 5038/tcp 10000-11999/udp

# Fully booted, and the control socket answers. Runs as root, like `docker exec`.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["asterisk", "-rx", "core waitfullybooted"]

ENTRYPOINT ["/usr/local/bin/hotline-asterisk-entrypoint"]
