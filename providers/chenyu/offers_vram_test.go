package chenyu

import "testing"

func TestVRAMFromModelName(t *testing.T) {
	for name, want := range map[string]int{
		"NVIDIA RTX 4090":  24,
		"NVIDIA RTX 4090D": 24,
		"NVIDIA A100 80G":  80,
		"NVIDIA A100":      0, // sold as 40 and 80 GB: unknown unless stated
		"NVIDIA RTX 3080":  0, // 10 and 12 GB variants
		"NVIDIA L40S":      48,
		"NVIDIA H800 80G":  80,
		"NVIDIA H20":       96,
		"Tesla T4":         16,
		"NVIDIA RTX 3090":  24,
		"A100-40GB":        40,
	} {
		if got := vramGB(name); got != want {
			t.Errorf("vramGB(%q) = %d, want %d", name, got, want)
		}
	}
}
