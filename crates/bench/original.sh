#!/usr/bin/env bash
# The original playbook's sequence, generous to it: per VM, one SSH command
# per step, in order, through one ControlMaster connection per node (Ansible
# adds its own per-task cost on top of this).
#
#   original.sh SSH_CONFIG CONTROL_DIR IMAGE_PATH FIRST_VMID COUNT NODE...
set -euo pipefail
cfg=$1 ctl=$2 image=$3 first=$4 count=$5
shift 5
nodes=("$@")
ssh_() {
  ssh -F "$cfg" -o ControlMaster=auto -o "ControlPath=$ctl/cm-%C" -o ControlPersist=600 "$@"
}
for node in "${nodes[@]}"; do
  ssh_ -M -N -f "$node"
done
for ((i = 0; i < count; i++)); do
  id=$((first + i))
  node=${nodes[$((i % ${#nodes[@]}))]}
  ip="10.0.$((i / 250)).$((i % 250 + 2))/16"
  ssh_ "$node" "pvesh get /nodes/$node/storage/local/content --content iso --output-format json" >/dev/null
  ssh_ "$node" "qm create $id --name vm-$id --memory 1024 --cores 1 --net0 virtio,bridge=vmbr0"
  ssh_ "$node" "qm importdisk $id $image local-lvm" >/dev/null
  ssh_ "$node" "qm set $id --scsi0 local-lvm:vm-$id-disk-0" >/dev/null
  ssh_ "$node" "qm set $id --boot c --bootdisk scsi0" >/dev/null
  ssh_ "$node" "qm set $id --agent enabled=1" >/dev/null
  ssh_ "$node" "qm set $id --ipconfig0 ip=$ip,gw=10.0.0.1" >/dev/null
  ssh_ "$node" "qm start $id"
done
for node in "${nodes[@]}"; do
  ssh_ -O exit "$node" 2>/dev/null || true
done
