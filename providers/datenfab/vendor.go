package datenfab

import (
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
)

// Vendor describes Datenfab to the vendor list.
var Vendor = providers.Vendor{Name: Name, Title: "Datenfab", EnvPrefix: "DATENFAB_", Hint: "DATENFAB_TOKEN and DATENFAB_NAMESPACE",
	Config: func() providers.VendorConfig { return &Config{} }, Capabilities: capabilities,
	Emulate: dftest.Emulate, Endpoints: dftest.Endpoints}
