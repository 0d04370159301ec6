package providers

import (
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
)

// Vendor describes one GPU cloud to the rest of the program: how it is configured, how its
// adapter is built, how its emulator is started, what it cannot do. Each adapter package
// exports its own (huixingyun.Vendor); the package vendors lists them, and the command, the
// demo, the usage text and the cross-vendor tests go through that list.
type Vendor struct {
	// Name is the provider name, the prefix of its ids ("huixingyun").
	Name string
	// Title is how people write it ("HuiXingYun").
	Title string
	// EnvPrefix begins the names of its environment variables ("HUIXINGYUN_"); the env tags
	// of its configuration follow it ("TOKEN").
	EnvPrefix string
	// Hint names the variables that enable it, for the answers that say how to configure a
	// provider ("HUIXINGYUN_TOKEN").
	Hint string
	// Config returns a zero configuration: a pointer to a struct whose fields carry env tags.
	Config func() VendorConfig
	// Capabilities say what its API can and cannot do, as its adapter reports them.
	Capabilities Capabilities
	// Emulate starts its emulator on loopback, and returns with it the variables that point an
	// adapter at it, without EnvPrefix ("TOKEN", "BASE_URL").
	Emulate func(emulated.Options) (emulated.Server, map[string]string)
	// Endpoints are the requests of its emulated API that tests aim faults at.
	Endpoints emulated.Endpoints
}

// VendorConfig is a vendor adapter's configuration, as Vendor.Config makes it and the
// environment fills it in.
type VendorConfig interface {
	// Enabled reports whether the credentials that enable the vendor are set. A half-set
	// configuration is an error that names the variable missing.
	Enabled() (bool, error)
	// Secrets are the values that must never be written anywhere (tokens, keys).
	Secrets() []string
	// Provider builds the adapter, with the HTTP options and the logger every adapter shares.
	Provider(o HTTPOptions, log *zerolog.Logger) Provider
}
