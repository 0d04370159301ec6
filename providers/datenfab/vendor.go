package datenfab

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
)

// Vendor describes Datenfab to the vendor list.
var Vendor = providers.Vendor{
	Name: Name, Title: "Datenfab", EnvPrefix: "DATENFAB_", Hint: "DATENFAB_TOKEN and DATENFAB_NAMESPACE",
	Config:       func() providers.VendorConfig { return &Config{} },
	Capabilities: capabilities,
	Emulate: func(o emulated.Options) (providers.VendorConfig, emulated.Server) {
		s := dftest.NewServer(dftest.Options{StepDelay: o.StepDelay, Now: o.Now, Wrap: o.Wrap})
		return &Config{Token: s.Credential(), Namespace: s.Namespace(), BaseURL: s.URL()}, s
	},
	// ListOffers asks the SKUs of both emulated regions at once.
	Endpoints: emulated.Endpoints{Offers: "/skus/computings", OfferReads: 2,
		Buy: emulated.Faults{Method: http.MethodPost, Path: "/instances"}},
}

// Enabled implements providers.VendorConfig: the token and the namespace, both, enable
// Datenfab.
func (c *Config) Enabled() (bool, error) {
	switch {
	case c.Token != "" && c.Namespace == "":
		return false, errors.New("DATENFAB_TOKEN is set but DATENFAB_NAMESPACE is not: datenfab needs both")
	case c.Token == "" && c.Namespace != "":
		return false, errors.New("DATENFAB_NAMESPACE is set but DATENFAB_TOKEN is not: datenfab needs both")
	}
	return c.Token != "", nil
}

// Secrets implements providers.VendorConfig.
func (c *Config) Secrets() []string { return []string{c.Token} }

// Provider implements providers.VendorConfig.
func (c *Config) Provider(o providers.HTTPOptions, log *zerolog.Logger) providers.Provider {
	cfg := *c
	cfg.HTTP, cfg.Logger = o, log
	return New(cfg)
}
