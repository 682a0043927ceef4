#!/bin/sh
# Entrypoint of the Asterisk container (docker/asterisk.Dockerfile), POSIX sh for Alpine.
#
#   (no argument, or Asterisk options such as -vvv)
#       Check what Asterisk needs and write the files that come from the environment, then run
#       Asterisk in the foreground as the unprivileged user (exec: Asterisk is the process the
#       container supervises):
#       - /etc/asterisk/manager_secrets_<user>.conf (mode 600) for the two AMI users of the
#         rendered manager.conf, from HOTLINE_AMI_SECRET and HOTLINE_AMI_ADMIN_SECRET;
#       - /etc/asterisk/pjsip_site.conf: bind and public address and carrier, from HOTLINE_SIP_* and
#         HOTLINE_CARRIER_*;
#       - /etc/asterisk/pjsip_seats.conf (mode 600): copied from the mounted site folder.
#       It refuses to start, naming what is wrong, when a secret is missing, empty, too short
#       or still the placeholder, when the rendered dialplan or the seats file is missing.
#   reload-seats
#       Install the mounted pjsip_seats.conf again and reload PJSIP, for a roster change
#       without restarting Asterisk (calls in progress are kept):
#         docker compose -f docker/compose.yaml exec asterisk hotline-asterisk-entrypoint reload-seats
#   anything else
#       Run it instead (a shell for debugging, say).
#
# Every path and the run user can be overridden through the environment, so the script is
# tested outside a container (tests/unit/test_docker_files.py).
set -eu
LC_ALL=C
export LC_ALL

ETC_DIR=${HOTLINE_ASTERISK_ETC:-/etc/asterisk}
RENDERED_DIR=${HOTLINE_RENDERED_DIR:-$ETC_DIR/hotline}
SITE_DIR=${HOTLINE_SITE_DIR:-/run/hotline/site}
PROMPTS_DIR=${HOTLINE_PROMPTS_DIR:-/var/lib/hotline/recordings/prompts}
CALLS_DIR=${HOTLINE_CALLS_DIR:-/var/lib/hotline/recordings/calls}
RUN_USER=${HOTLINE_ASTERISK_USER:-asterisk}
RUN_GROUP=${HOTLINE_ASTERISK_GROUP:-asterisk}
# ami.username and ami.admin_username of hotline_merge.yaml (compose.yaml sets them too).
AMI_USER=${HOTLINE_AMI_USERNAME:-hotline-gateway}
AMI_ADMIN_USER=${HOTLINE_AMI_ADMIN_USERNAME:-hotline-admin}
RENDERED_FILES="extensions.conf queues.conf manager.conf features.conf"

die() {
	echo "hotline-asterisk: refusing to start: $*" >&2
	exit 1
}

warn() {
	echo "hotline-asterisk: WARNING: $*" >&2
}

# A value that ends up in an Asterisk config file: no ';' (starts a comment), no spaces, no
# quotes or brackets; never the env.example placeholder; at least $3 characters.
check_value() {
	name=$1
	value=$2
	[ -n "$value" ] || die "$name is empty or unset: set it in docker/.env (see docker/env.example)"
	case $value in
	*change-me*) die "$name still holds the placeholder of docker/env.example: put a real value in docker/.env" ;;
	*[!A-Za-z0-9._~+/=@%:-]*) die "$name may only contain A-Z a-z 0-9 and . _ ~ + / = @ % : - (e.g. openssl rand -hex 24)" ;;
	esac
	[ "${#value}" -ge "$3" ] || die "$name is shorter than $3 characters"
}

# Secrets this deployment chooses itself: long enough not to be guessed over AMI.
check_secret() {
	check_value "$1" "$2" 16
}

check_name() {
	case $2 in
	'' | *[!A-Za-z0-9_-]*) die "$1='$2' is not a valid manager user name (A-Z a-z 0-9 _ -)" ;;
	esac
}

# host, IPv4 address or host name, optionally :port
check_address() {
	printf '%s\n' "$2" | grep -Eq '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$' ||
		die "$1='$2' is not a host name or IPv4 address (optionally :port)"
}

# env.example's addresses are from the documentation ranges (RFC 5737): never a real peer.
check_not_example() {
	case $2 in
	192.0.2.* | 198.51.100.* | 203.0.113.*) die "$1='$2' is still the example of docker/env.example: put the real address in docker/.env" ;;
	esac
}

# comma-separated addresses or networks (1.2.3.4, 1.2.3.0/24, sbc.example.net)
check_match() {
	printf '%s\n' "$2" | grep -Eq '^[A-Za-z0-9.:/-]+(,[A-Za-z0-9.:/-]+)*$' ||
		die "$1='$2' is not a comma-separated list of addresses or networks"
}

# Write stdin to $1 atomically, owned by the run user, mode 600.
install_private() {
	target=$1
	tmp="$target.tmp.$$"
	(
		umask 077
		cat >"$tmp"
	)
	chown "$RUN_USER:$RUN_GROUP" "$tmp"
	chmod 600 "$tmp"
	mv -f "$tmp" "$target"
}

check_rendered() {
	for name in $RENDERED_FILES; do
		[ -s "$RENDERED_DIR/$name" ] ||
			die "$RENDERED_DIR/$name is missing: run 'hotline-gateway render' in the repo first (compose mounts dialplans/ there)"
	done
	# The rendered manager.conf names its users through the secrets files it includes; they
	# must be exactly the two users this script writes secrets for.
	users=$(sed -n 's/^[[:space:]]*#include[[:space:]][[:space:]]*manager_secrets_\([A-Za-z0-9_-][A-Za-z0-9_-]*\)\.conf[[:space:]]*$/\1/p' "$RENDERED_DIR/manager.conf")
	for wanted in "$AMI_USER" "$AMI_ADMIN_USER"; do
		printf '%s\n' "$users" | grep -qxF -- "$wanted" ||
			die "the rendered manager.conf has no user '$wanted' (it includes secrets for: $(printf '%s' "$users" | tr '\n' ' ')); HOTLINE_AMI_USERNAME and HOTLINE_AMI_ADMIN_USERNAME must be ami.username and ami.admin_username of hotline_merge.yaml"
	done
	for user in $users; do
		[ "$user" = "$AMI_USER" ] || [ "$user" = "$AMI_ADMIN_USER" ] ||
			die "the rendered manager.conf includes manager_secrets_$user.conf, which nothing provides"
	done
}

write_manager_secrets() {
	check_name HOTLINE_AMI_USERNAME "$AMI_USER"
	check_name HOTLINE_AMI_ADMIN_USERNAME "$AMI_ADMIN_USER"
	[ "$AMI_USER" != "$AMI_ADMIN_USER" ] || die "the controller and the admin AMI user must differ"
	check_secret HOTLINE_AMI_SECRET "${HOTLINE_AMI_SECRET:-}"
	check_secret HOTLINE_AMI_ADMIN_SECRET "${HOTLINE_AMI_ADMIN_SECRET:-}"
	[ "$HOTLINE_AMI_SECRET" != "$HOTLINE_AMI_ADMIN_SECRET" ] ||
		die "HOTLINE_AMI_SECRET and HOTLINE_AMI_ADMIN_SECRET must differ"
	printf '; Written at container start from HOTLINE_AMI_SECRET. Not in git, not in the image.\nsecret = %s\n' \
		"$HOTLINE_AMI_SECRET" | install_private "$ETC_DIR/manager_secrets_$AMI_USER.conf"
	printf '; Written at container start from HOTLINE_AMI_ADMIN_SECRET. Not in git, not in the image.\nsecret = %s\n' \
		"$HOTLINE_AMI_ADMIN_SECRET" | install_private "$ETC_DIR/manager_secrets_$AMI_ADMIN_USER.conf"
}

write_pjsip_site() {
	bind=${HOTLINE_SIP_BIND:-0.0.0.0:5060}
	printf '%s\n' "$bind" | grep -Eq '^[0-9]{1,3}(\.[0-9]{1,3}){3}:[0-9]{1,5}$' ||
		die "HOTLINE_SIP_BIND='$bind' is not an IPv4 address:port (default 0.0.0.0:5060)"
	external=${HOTLINE_SIP_EXTERNAL_ADDRESS:-}
	carrier=${HOTLINE_CARRIER_ADDRESS:-}
	[ -n "$external" ] ||
		die "HOTLINE_SIP_EXTERNAL_ADDRESS is unset: the Docker host's address that phones and the carrier send SIP and RTP to"
	check_address HOTLINE_SIP_EXTERNAL_ADDRESS "$external"
	check_not_example HOTLINE_SIP_EXTERNAL_ADDRESS "$external"
	case $external in *:*) die "HOTLINE_SIP_EXTERNAL_ADDRESS is an address without a port" ;; esac
	[ -n "$carrier" ] || die "HOTLINE_CARRIER_ADDRESS is unset: the carrier's SIP address (host or IPv4, optionally :port)"
	check_address HOTLINE_CARRIER_ADDRESS "$carrier"
	check_not_example HOTLINE_CARRIER_ADDRESS "$carrier"
	match=${HOTLINE_CARRIER_MATCH:-${carrier%%:*}}
	check_match HOTLINE_CARRIER_MATCH "$match"
	check_not_example HOTLINE_CARRIER_MATCH "$match"
	username=${HOTLINE_CARRIER_USERNAME:-}
	if [ -n "$username" ]; then
		printf '%s\n' "$username" | grep -Eq '^[A-Za-z0-9._+-]+$' ||
			die "HOTLINE_CARRIER_USERNAME may only contain A-Z a-z 0-9 . _ + -"
		# The carrier chooses this password: no length rule of ours.
		check_value HOTLINE_CARRIER_SECRET "${HOTLINE_CARRIER_SECRET:-}" 1
	fi
	{
		echo '; GENERATED at container start from docker/.env by the entrypoint: do not edit.'
		echo
		for transport in transport-udp transport-tcp; do
			printf '[%s](+)\nbind = %s\nexternal_media_address = %s\nexternal_signaling_address = %s\n\n' \
				"$transport" "$bind" "$external" "$external"
		done
		if [ -n "$username" ]; then
			# Appends to the first [carrier-trunk] of the configuration: the endpoint in pjsip.conf.
			printf '[carrier-trunk](+)\noutbound_auth = carrier-trunk-auth\n\n'
		fi
		printf '[carrier-trunk]\ntype = aor\ncontact = sip:%s\nqualify_frequency = 60\n\n' "$carrier"
		printf '[carrier-trunk]\ntype = identify\nendpoint = carrier-trunk\nmatch = %s\n' "$match"
		if [ -n "$username" ]; then
			# Only for carriers that want a registration (most 12345 trunks are IP-authenticated).
			printf '\n[carrier-trunk-auth]\ntype = auth\nauth_type = userpass\nusername = %s\npassword = %s\n' \
				"$username" "$HOTLINE_CARRIER_SECRET"
			printf '\n[carrier-trunk-registration]\ntype = registration\ntransport = transport-udp\n'
			printf 'outbound_auth = carrier-trunk-auth\nserver_uri = sip:%s\nclient_uri = sip:%s@%s\n' \
				"$carrier" "$username" "$carrier"
			printf 'retry_interval = 60\nforbidden_retry_interval = 300\nexpiration = 3600\nline = yes\nendpoint = carrier-trunk\n'
		fi
	} | install_private "$ETC_DIR/pjsip_site.conf"
}

install_seats() {
	source_file="$SITE_DIR/pjsip_seats.conf"
	[ -f "$source_file" ] ||
		die "$source_file is missing: generate it with '.venv/bin/python docker/gen_seats.py' (docker/README.md, Seats)"
	if grep -q 'change-me' "$source_file"; then
		die "$source_file still holds placeholder passwords (change-me)"
	fi
	install_private "$ETC_DIR/pjsip_seats.conf" <"$source_file"
}

prepare_recordings() {
	# MixMonitor writes calls/YYYYMMDD/<uniqueid>.wav as the run user; citizens' voices: 750.
	# A folder that cannot be prepared costs the recordings, not the calls: warn, go on.
	if ! { mkdir -p "$CALLS_DIR" && chown "$RUN_USER:$RUN_GROUP" "$CALLS_DIR" && chmod 750 "$CALLS_DIR"; }; then
		warn "cannot prepare $CALLS_DIR for $RUN_USER: calls will NOT be recorded until it is writable"
	fi
	# Missing prompts do not stop calls either (Playback fails, the caller still reaches a seat).
	set -- "$PROMPTS_DIR"/*.wav
	[ -e "$1" ] || warn "no prompts in $PROMPTS_DIR: callers will hear no greeting (mount recordings/prompts)"
}

# Asterisk gets none of the gateway's secrets or tokens: once written to files, the
# environment copies go (ENV() in a dialplan or over AMI could otherwise read them).
drop_secrets_from_environment() {
	for var in $(env | sed -n 's/^\(HOTLINE_[A-Za-z0-9_]*\)=.*/\1/p'); do
		case $var in
		*SECRET* | *TOKEN*) unset "$var" ;;
		esac
	done
}

case ${1:-} in
reload-seats)
	install_seats
	exec asterisk -rx 'module reload res_pjsip.so'
	;;
'' | -*)
	check_rendered
	write_manager_secrets
	write_pjsip_site
	install_seats
	prepare_recordings
	drop_secrets_from_environment
	echo "hotline-asterisk: configuration ready; starting Asterisk as $RUN_USER:$RUN_GROUP" >&2
	exec asterisk -f -U "$RUN_USER" -G "$RUN_GROUP" "$@"
	;;
*)
	exec "$@"
	;;
esac
