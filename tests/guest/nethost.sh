#!/bin/bash
# tests/guest/nethost.sh DIR QUEUES CMD [ARG]...: the host's end of the guests' network steps
# (mkinitrd.sh: net, netrx, nettx, nettx2, netbench), for the guest tests and bench/net.sh.
#
# Run it in a network namespace of its own (`unshare --net tests/guest/nethost.sh ...`): it makes
# tap0 there (`ip tuntap ... multi_queue` if QUEUES > 1; MTU $NET_MTU if set) at 10.0.2.2/24, up,
# and listens on TCP:
#   5001  sends DIR/data, once, 256 KiB per write, and closes (socat's default 8 KiB writes make
#         the host's TCP send one small frame per write whenever the guest's window is open)
#   5002, 5003, 5004  read to the end and write the data's md5 to DIR/PORT.md5 (NET_SINK=null: throw
#         it away, for the benchmark)
# then runs CMD (a VMM on tap0) and exits with its status. A listener no guest connected to is
# ended then and leaves no file. The namespace, with tap0, goes when its last process ends.
set -euo pipefail
dir=$1 queues=$2
shift 2

ip link set lo up
mq=()
[[ $queues -gt 1 ]] && mq=(multi_queue)
ip tuntap add dev tap0 mode tap "${mq[@]}"
ip addr add 10.0.2.2/24 dev tap0
[[ -z ${NET_MTU:-} ]] || ip link set tap0 mtu "$NET_MTU"
ip link set tap0 up

pids=()
socat -u -b 262144 "OPEN:$dir/data,rdonly" TCP-LISTEN:5001,reuseaddr &
pids+=($!)
for port in 5002 5003 5004; do
	if [[ ${NET_SINK:-} == null ]]; then
		socat -u TCP-LISTEN:$port,reuseaddr OPEN:/dev/null &
	else
		# socat forks the sum only once a guest has connected: no connection, no file.
		socat -u TCP-LISTEN:$port,reuseaddr SYSTEM:"md5sum | head -c 32 >$dir/$port.md5" &
	fi
	pids+=($!)
done
# Wait until all four listen (bounded: a listener that died is not waited for).
for ((i = 0; i < 100; i++)); do
	[[ $(ss -Hltn 'sport >= :5001 and sport <= :5004' | wc -l) == 4 ]] && break
	sleep 0.05
done

status=0
"$@" || status=$?
# A listener still listening had no guest: end it. One that had a guest ends when its stream does,
# which is before the guest's nc returned; a guest gone mid-stream leaves it waiting: end it too,
# after a while, with the sum of what came (socat waits for the sum).
for pid in "${pids[@]}"; do
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		ss -Hltnp | grep -q "pid=$pid," && break
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
done
wait
exit $status
