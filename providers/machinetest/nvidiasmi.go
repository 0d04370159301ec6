package machinetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func (m *Machine) binDir() string { return filepath.Join(m.priv, "bin") }

func (m *Machine) gpuState() string { return filepath.Join(m.priv, "gpu.env") }

// GPUUUID is the UUID the fake nvidia-smi gives GPU index of the machine.
func (m *Machine) GPUUUID(index int) string {
	h := sha256.Sum256([]byte(m.marker))
	return fmt.Sprintf("GPU-%x-%x-%x-%x-%x%02x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:15], index)
}

// FakeProcessPID is the pid nvidia-smi lists for the process on GPU index while its
// utilization is above zero. No such process runs on the machine.
func FakeProcessPID(index int) int { return 4200 + index }

// SetGPUUtilization sets what nvidia-smi reports for every GPU from now on: utilization pct,
// and with it the memory used (pct of the total), temperature and power draw, and one process
// per GPU while pct is above zero.
func (m *Machine) SetGPUUtilization(pct int) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("machinetest: GPU utilization %d%%: want 0 to 100", pct)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gpuUtil = pct
	return m.writeGPUState()
}

// SetGPUs changes the machine's GPUs from now on, as an instance started again on other GPUs
// has: count of model (the default model when empty), each with memMiB of memory (the default
// when 0). A count of 0 removes nvidia-smi.
func (m *Machine) SetGPUs(model string, count, memMiB int) error {
	if count < 0 {
		return fmt.Errorf("machinetest: GPU count %d: want 0 or more", count)
	}
	if model == "" {
		model = DefaultGPUModel
	}
	if memMiB == 0 {
		memMiB = DefaultGPUMemoryMiB
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opts.GPUModel, m.opts.GPUCount, m.opts.GPUMemoryMiB = model, count, memMiB
	if count == 0 {
		if err := os.Remove(filepath.Join(m.binDir(), "nvidia-smi")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return m.writeNvidiaSMI()
}

// writeGPUState writes the file the script reads, atomically. m.mu must be held, or the
// machine not yet shared.
func (m *Machine) writeGPUState() error {
	uuids := make([]string, m.opts.GPUCount)
	for i := range uuids {
		uuids[i] = m.GPUUUID(i)
	}
	state := fmt.Sprintf("GPU_MODEL=%s\nGPU_COUNT=%d\nGPU_MEM=%d\nGPU_UTIL=%d\nGPU_UUIDS=%s\nGPU_PID0=%d\n",
		shQuote(m.opts.GPUModel), m.opts.GPUCount, m.opts.GPUMemoryMiB, m.gpuUtil,
		shQuote(strings.Join(uuids, " ")), FakeProcessPID(0))
	tmp := m.gpuState() + ".tmp"
	if err := os.WriteFile(tmp, []byte(state), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, m.gpuState())
}

// writeNvidiaSMI writes the GPU state and the script that reads it. m.mu must be held, or the
// machine not yet shared.
func (m *Machine) writeNvidiaSMI() error {
	if err := os.MkdirAll(m.binDir(), 0o755); err != nil {
		return err
	}
	if m.opts.GPUCount == 0 {
		return nil
	}
	if err := m.writeGPUState(); err != nil {
		return err
	}
	script := strings.ReplaceAll(nvidiaSMI, "@STATE@", shQuote(m.gpuState()))
	return os.WriteFile(filepath.Join(m.binDir(), "nvidia-smi"), []byte(script), 0o755)
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// nvidiaSMI answers --query-gpu and --query-compute-apps with any fields among those below,
// in any order, in --format=csv with or without noheader and nounits; -L; and the plain table.
const nvidiaSMI = `#!/bin/sh
# nvidia-smi of an emulated machine (providers/machinetest).
. @STATE@
mode=table query= format=csv
for a in "$@"; do
	case $a in
	--query-gpu=*) mode=gpu query=${a#*=} ;;
	--query-compute-apps=*) mode=apps query=${a#*=} ;;
	--format=*) format=${a#*=} ;;
	-L|--list-gpus) mode=list ;;
	*) echo "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help." >&2; exit 2 ;;
	esac
done
header=1 units=1
case ",$format," in *,noheader,*) header=0 ;; esac
case ",$format," in *,nounits,*) units=0 ;; esac
used=$((GPU_MEM * GPU_UTIL / 100))

# field NAME INDEX UUID sets v to the value, or fails for a field this emulator does not know
field() {
	case $1 in
	index) v=$2 u= ;;
	name) v=$GPU_MODEL u= ;;
	uuid|gpu_uuid) v=$3 u= ;;
	utilization.gpu) v=$GPU_UTIL u=' %' ;;
	memory.used|used_memory) v=$used u=' MiB' ;;
	memory.total) v=$GPU_MEM u=' MiB' ;;
	memory.free) v=$((GPU_MEM - used)) u=' MiB' ;;
	temperature.gpu) v=$((30 + GPU_UTIL / 2)) u= ;;
	power.draw) v=$((25 + GPU_UTIL * 4)).00 u=' W' ;;
	pid) v=$((GPU_PID0 + $2)) u= ;;
	process_name) v=python u= ;;
	driver_version) v=550.54.15 u= ;;
	*) echo "Field \"$1\" is not a valid field to query." >&2; return 1 ;;
	esac
	[ $units = 0 ] || v=$v$u
}

unit() {
	case $1 in
	utilization.gpu) printf ' [%%]' ;;
	memory.*|used_memory) printf ' [MiB]' ;;
	power.draw) printf ' [W]' ;;
	esac
}

rows() {
	set -f
	old=$IFS IFS=,
	set -- $query
	IFS=$old
	for f in "$@"; do field "$f" 0 - || exit 2; done
	if [ $header = 1 ]; then
		sep=
		for f in "$@"; do
			printf '%s%s' "$sep" "$f"
			[ $units = 0 ] || unit "$f"
			sep=', '
		done
		echo
	fi
	[ $mode = apps ] && [ "$GPU_UTIL" = 0 ] && return
	i=0
	for uuid in $GPU_UUIDS; do
		sep=
		for f in "$@"; do
			printf '%s' "$sep"
			field "$f" $i "$uuid" || exit 2
			printf '%s' "$v"
			sep=', '
		done
		echo
		i=$((i + 1))
	done
}

case $mode in
gpu|apps) rows ;;
list)
	i=0
	for uuid in $GPU_UUIDS; do
		echo "GPU $i: $GPU_MODEL (UUID: $uuid)"
		i=$((i + 1))
	done ;;
table)
	echo "+-----------------------------------------------------------------------------------------+"
	echo "| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |"
	echo "|-----------------------------------------+------------------------+----------------------+"
	echo "| GPU  Name                               | Memory-Usage           | GPU-Util             |"
	echo "|=========================================+========================+======================|"
	i=0
	for uuid in $GPU_UUIDS; do
		printf '| %3d  %-34s | %8sMiB / %6sMiB | %19s%% |\n' $i "$GPU_MODEL" $used $GPU_MEM $GPU_UTIL
		i=$((i + 1))
	done
	echo "+-----------------------------------------+------------------------+----------------------+"
	echo
	echo "| Processes:                                                                              |"
	if [ "$GPU_UTIL" = 0 ]; then
		echo "|  No running processes found                                                             |"
	else
		i=0
		for uuid in $GPU_UUIDS; do
			printf '| %3d   %8d  python %60sMiB |\n' $i $((GPU_PID0 + i)) $used
			i=$((i + 1))
		done
	fi ;;
esac
`
