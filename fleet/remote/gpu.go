package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// GPU is one GPU as nvidia-smi reports it. A figure the driver does not report ("[N/A]",
// "[Not Supported]") is -1.
type GPU struct {
	Index          int
	Name           string
	UUID           string
	UtilizationPct int
	MemoryUsedMiB  int64
	MemoryTotalMiB int64
	TemperatureC   int
	PowerW         float64
}

// GPUProcess is a process using a GPU. GPUIndex is -1 when its GPU is not among the listed.
type GPUProcess struct {
	GPUIndex      int
	GPUUUID       string
	PID           int
	Name          string
	UsedMemoryMiB int64
}

// GPUReport is the machine's GPUs and the processes on them.
type GPUReport struct {
	GPUs      []GPU
	Processes []GPUProcess
}

// ErrNoNVIDIADriver is wrapped by GPUStatus's error on a machine where nvidia-smi is missing
// or cannot reach a driver.
var ErrNoNVIDIADriver = errors.New("no NVIDIA driver on this machine")

const (
	gpuQuery  = "index,name,uuid,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw"
	appsQuery = "gpu_uuid,pid,process_name,used_memory"
	appsMark  = "\x1egpu-mcp-apps"
)

// GPUStatus runs nvidia-smi on the machine and parses its GPUs and their processes.
func (p *Pool) GPUStatus(ctx context.Context, t Target) (GPUReport, error) {
	script := `command -v nvidia-smi >/dev/null 2>&1 || exit 127; ` +
		`nvidia-smi --query-gpu=` + gpuQuery + ` --format=csv,noheader,nounits || exit $?; ` +
		`printf '\036gpu-mcp-apps\n'; nvidia-smi --query-compute-apps=` + appsQuery + ` --format=csv,noheader,nounits; exit 0`
	out, errOut, code, err := p.output(ctx, t, script, 1<<20)
	if err != nil {
		return GPUReport{}, fmt.Errorf("cannot run nvidia-smi on %s: %w", t, err)
	}
	if code != 0 {
		return GPUReport{}, nvidiaSMIError(t, code, out, errOut)
	}
	gpus, apps, _ := bytes.Cut(out, []byte(appsMark+"\n"))
	return parseGPUs(gpus, apps), nil
}

func nvidiaSMIError(t Target, code int, out, errOut []byte) error {
	msg := clip(append(append(out, '\n'), errOut...), 300)
	switch {
	case code == 127:
		return fmt.Errorf("instance %s: %w: nvidia-smi is not installed (or not on the PATH); a GPU image brings it with the driver", t.InstanceID, ErrNoNVIDIADriver)
	case strings.Contains(msg, "NVIDIA-SMI has failed"), strings.Contains(msg, "communicate with the NVIDIA driver"), strings.Contains(msg, "No devices were found"):
		return fmt.Errorf("instance %s: %w: nvidia-smi says: %s", t.InstanceID, ErrNoNVIDIADriver, msg)
	}
	return fmt.Errorf("nvidia-smi failed on instance %s (exit status %d): %s", t.InstanceID, code, msg)
}

func parseGPUs(gpus, apps []byte) GPUReport {
	var r GPUReport
	index := map[string]int{}
	for _, f := range csvLines(gpus) {
		if len(f) != 8 {
			continue
		}
		g := GPU{
			Index: int(number(f[0])), Name: sanitizeLine([]byte(f[1])), UUID: sanitizeLine([]byte(f[2])),
			UtilizationPct: int(number(f[3])), MemoryUsedMiB: int64(number(f[4])), MemoryTotalMiB: int64(number(f[5])),
			TemperatureC: int(number(f[6])), PowerW: number(f[7]),
		}
		index[g.UUID] = g.Index
		r.GPUs = append(r.GPUs, g)
	}
	for _, f := range csvLines(apps) {
		if len(f) < 4 {
			continue // "No running processes found", on some versions
		}
		pr := GPUProcess{
			GPUUUID:       sanitizeLine([]byte(f[0])),
			PID:           int(number(f[1])),
			Name:          sanitizeLine([]byte(strings.Join(f[2:len(f)-1], ","))), // a name may hold commas
			UsedMemoryMiB: int64(number(f[len(f)-1])),
			GPUIndex:      -1,
		}
		if i, ok := index[pr.GPUUUID]; ok {
			pr.GPUIndex = i
		}
		r.Processes = append(r.Processes, pr)
	}
	return r
}

// csvLines splits nvidia-smi's csv (fields separated by ", ", never quoted) into trimmed
// fields per non-empty line.
func csvLines(b []byte) [][]string {
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		rows = append(rows, f)
	}
	return rows
}

// number parses a figure, -1 for what the driver does not report.
func number(s string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return -1
	}
	return v
}
