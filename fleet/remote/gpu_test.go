package remote

import (
	"errors"
	"os/exec"
	"reflect"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

func TestGPUStatus(t *testing.T) {
	r := newRig(t, machinetest.Options{GPUModel: "NVIDIA H800", GPUCount: 2, GPUMemoryMiB: 81559})
	rep, err := r.pool.GPUStatus(ctxT(t), r.tgt)
	if err != nil {
		t.Fatal(err)
	}
	idle := []GPU{
		{Index: 0, Name: "NVIDIA H800", UUID: r.m.GPUUUID(0), UtilizationPct: 0, MemoryUsedMiB: 0, MemoryTotalMiB: 81559, TemperatureC: 30, PowerW: 25},
		{Index: 1, Name: "NVIDIA H800", UUID: r.m.GPUUUID(1), UtilizationPct: 0, MemoryUsedMiB: 0, MemoryTotalMiB: 81559, TemperatureC: 30, PowerW: 25},
	}
	if !reflect.DeepEqual(rep.GPUs, idle) || len(rep.Processes) != 0 {
		t.Fatalf("idle: %+v", rep)
	}
	if err := r.m.SetGPUUtilization(90); err != nil {
		t.Fatal(err)
	}
	rep, err = r.pool.GPUStatus(ctxT(t), r.tgt)
	if err != nil {
		t.Fatal(err)
	}
	if g := rep.GPUs[1]; g.UtilizationPct != 90 || g.MemoryUsedMiB != 81559*90/100 || g.PowerW != 385 {
		t.Fatalf("busy: %+v", g)
	}
	want := []GPUProcess{
		{GPUIndex: 0, GPUUUID: r.m.GPUUUID(0), PID: machinetest.FakeProcessPID(0), Name: "python", UsedMemoryMiB: 81559 * 90 / 100},
		{GPUIndex: 1, GPUUUID: r.m.GPUUUID(1), PID: machinetest.FakeProcessPID(1), Name: "python", UsedMemoryMiB: 81559 * 90 / 100},
	}
	if !reflect.DeepEqual(rep.Processes, want) {
		t.Fatalf("processes %+v", rep.Processes)
	}
}

func TestGPUStatusWithoutDriver(t *testing.T) {
	if _, err := exec.LookPath("nvidia-smi"); err == nil {
		t.Skip("this host has an nvidia-smi of its own")
	}
	r := newRig(t, machinetest.Options{})
	_, err := r.pool.GPUStatus(ctxT(t), r.tgt)
	if !errors.Is(err, ErrNoNVIDIADriver) {
		t.Fatalf("%v", err)
	}
}

func TestNvidiaSMIErrors(t *testing.T) {
	tgt := Target{InstanceID: "x"}
	failed := []byte("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n")
	if err := nvidiaSMIError(tgt, 9, failed, nil); !errors.Is(err, ErrNoNVIDIADriver) {
		t.Fatalf("driver gone: %v", err)
	}
	if err := nvidiaSMIError(tgt, 2, nil, []byte("\x1b[31mField \"x\" is not a valid field\n")); errors.Is(err, ErrNoNVIDIADriver) || err.Error() != `nvidia-smi failed on instance x (exit status 2): Field "x" is not a valid field` {
		t.Fatalf("other failure: %v", err)
	}
}

func TestParseGPUs(t *testing.T) {
	rep := parseGPUs(
		[]byte("0, Tesla T4, GPU-a, [N/A], 10, 15360, 41, [Not Supported]\nbroken line\n"),
		[]byte("GPU-a, 123, /usr/bin/python3, with, commas, 500\nGPU-z, 9, x, 1\nNo running processes found\n"))
	if len(rep.GPUs) != 1 || rep.GPUs[0].UtilizationPct != -1 || rep.GPUs[0].PowerW != -1 || rep.GPUs[0].MemoryTotalMiB != 15360 {
		t.Fatalf("gpus %+v", rep.GPUs)
	}
	if len(rep.Processes) != 2 || rep.Processes[0].Name != "/usr/bin/python3,with,commas" || rep.Processes[0].GPUIndex != 0 ||
		rep.Processes[0].UsedMemoryMiB != 500 || rep.Processes[1].GPUIndex != -1 {
		t.Fatalf("processes %+v", rep.Processes)
	}
}
