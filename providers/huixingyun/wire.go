package huixingyun

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/flex"
)

// The vendor's exact JSON (vendor-api.md 2.3). Every number is a flex type because the
// document mixes ints and strings for the same kind of field (quirk 5.1.2), and zone codes
// are flex.String in case a zone ever comes as a bare number.

// productList answers POST /gpu/product/list.
type productList struct {
	Items      []product `json:"items"`
	TotalItems flex.Int  `json:"total_items"`
}

type product struct {
	Name        flex.String `json:"name"`
	GPUType     flex.String `json:"gpu_type"`
	DiskCap     flex.Int    `json:"disk_cap"`
	Memory      flex.Int    `json:"memory"`
	CPU         flex.Int    `json:"cpu"`
	RoomName    flex.String `json:"room_name"`
	GPURemain   flex.Int    `json:"gpu_remain"`
	DiskOne     flex.Int    `json:"disk_one"`
	DiskDataOne flex.Int    `json:"disk_data_one"`
	GPURAM      flex.Int    `json:"gpu_ram"`
}

// appList answers POST /gpu/application/list. The document says app items also carry the
// product fields, but its example shows none of them (quirk 5.1.11): all are optional.
type appList struct {
	Items      []app    `json:"items"`
	TotalItems flex.Int `json:"total_items"`
}

type app struct {
	AppType     flex.String `json:"app_type"`
	Title       flex.String `json:"title"`
	Memory      flex.Int    `json:"memory"`
	CPU         flex.Int    `json:"cpu"`
	DiskOne     flex.Int    `json:"disk_one"`
	DiskDataOne flex.Int    `json:"disk_data_one"`
	Name        flex.String `json:"name"`
	GPUType     flex.String `json:"gpu_type"`
	RoomName    flex.String `json:"room_name"`
	GPURAM      flex.Int    `json:"gpu_ram"`
	GPURemain   flex.Int    `json:"gpu_remain"`
}

// imageList answers POST /gpu/images/list and POST /gpu/images/mine.
type imageList struct {
	Items      []image  `json:"items"`
	TotalItems flex.Int `json:"total_items"`
}

type image struct {
	Name        flex.String `json:"name"`
	ImageID     flex.String `json:"image_id"`
	Scene       flex.String `json:"scene"`
	OS          flex.String `json:"os"`
	Description flex.String `json:"description"`
	RoomName    flex.String `json:"room_name"`
}

// instanceList answers POST /gpu/instances/list. Its count is "total", a string, unlike the
// "total_items" int of the other lists (quirk 5.1.3); both are accepted.
type instanceList struct {
	Items      []instance `json:"items"`
	Total      flex.Int   `json:"total"`
	TotalItems flex.Int   `json:"total_items"`
}

type instance struct {
	GID         string          `json:"gid"`
	Name        flex.String     `json:"name"`
	CustomPorts json.RawMessage `json:"custom_ports"`
	AppMetadata json.RawMessage `json:"app_metadata"`
	Image       image           `json:"image"`
	Size        size            `json:"size"`
	IP          flex.String     `json:"ip"`
	Port        flex.String     `json:"port"` // type unknown: the example shows an unquoted placeholder
	Username    flex.String     `json:"username"`
	Password    flex.String     `json:"password"` // secret: never logged
	PayMethod   flex.String     `json:"pay_method"`
	Status      flex.String     `json:"status"`
	CreateAt    flex.String     `json:"create_at"`
	ExpireAt    flex.String     `json:"expire_at"`
	RoomName    flex.String     `json:"room_name"`
	OrderUID    flex.String     `json:"order_uid"`
}

type size struct {
	GPUType  flex.String `json:"gpu_type"`
	Scene    flex.String `json:"scene"`
	DiskFree flex.Int    `json:"disk_free"`
	GPURAM   flex.Int    `json:"gpu_ram"`
	GPUModel flex.String `json:"gpu_model"`
	Memory   flex.Int    `json:"memory"`
	CPU      flex.Int    `json:"cpu"`
	GPU      flex.Int    `json:"gpu"`
}

// batchAnswer is the answer of every action: {"success":[...],"fails":[...]}, plus the buy
// counters and the snapshot's {"success":true}. success holds gid strings (actions) or
// {"order_uid":...} objects (buys); the fails element shape is undocumented (quirk 5.1.10).
// The message keys are guesses at an error body, since none is documented (quirk 5.1.14).
type batchAnswer struct {
	SuccessInstance flex.Int        `json:"success_instance"`
	FailInstance    flex.Int        `json:"fail_instance"`
	Success         json.RawMessage `json:"success"`
	Fails           json.RawMessage `json:"fails"`
	OrderUID        flex.String     `json:"order_uid"`
	Message         flex.String     `json:"message"`
	Msg             flex.String     `json:"msg"`
	Error           flex.String     `json:"error"`
}

// Request bodies. Ints go through reqInt so that Config.IntsAsNumbers picks their encoding
// (quirk 5.1.1).

type buyRequest struct {
	ImageID  string `json:"image_id"`
	Num      reqInt `json:"num"`
	GPUType  string `json:"gpu_type"`
	GPUCount reqInt `json:"gpu_count"`
	PayUnit  reqInt `json:"pay_unit"`
	RoomName string `json:"room_name"`
}

type appBuyRequest struct {
	Num     reqInt `json:"num"`
	PayUnit reqInt `json:"pay_unit"`
	AppType string `json:"app_type"`
}

type gidRequest struct {
	GID string `json:"gid"`
}

type stopRequest struct {
	GID      string `json:"gid"`
	CardLess bool   `json:"card_less"`
}

type snapshotRequest struct {
	GID  string `json:"gid"`
	Name string `json:"name"`
}

type rebuildRequest struct {
	GID     string `json:"gid"`
	ImageID string `json:"image_id"`
}

type lengthenRequest struct {
	GID     string `json:"gid"`
	PayUnit reqInt `json:"pay_unit"`
}

type renewRequest struct {
	GID       string `json:"gid"`
	PayPeriod reqInt `json:"pay_period"`
}

type gpuTypeRequest struct {
	GPUType string `json:"gpu_type"`
}

type roomRequest struct {
	RoomName string `json:"room_name"`
}

// reqInt is a request integer, encoded as "1" (the document's examples) or 1.
type reqInt struct {
	n        int
	asNumber bool
}

func (i reqInt) MarshalJSON() ([]byte, error) {
	if i.asNumber {
		return []byte(strconv.Itoa(i.n)), nil
	}
	return []byte(strconv.Quote(strconv.Itoa(i.n))), nil
}

// pay_unit codes of /gpu/instances/buy, /gpu/application/buy and /gpu/instances/lengthen.
const (
	payUnitDay   = 1
	payUnitMonth = 2
	payUnitHour  = 4
)

// batchItem is one element of success or fails, whatever its shape.
type batchItem struct {
	GID      string
	OrderUID string
	Message  string
}

// parseBatchItems reads an array whose elements are strings (gids) or objects; anything
// else yields an item whose message is the element's text, so nothing the vendor said is
// dropped.
func parseBatchItems(raw json.RawMessage) []batchItem {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil
	}
	out := make([]batchItem, 0, len(elems))
	for _, e := range elems {
		var s string
		if json.Unmarshal(e, &s) == nil {
			out = append(out, batchItem{GID: strings.TrimSpace(s)})
			continue
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(e, &obj) == nil {
			out = append(out, batchItem{
				GID:      firstString(obj, "gid", "id", "instance_id", "instance"),
				OrderUID: firstString(obj, "order_uid", "order_id"),
				Message:  firstString(obj, "message", "msg", "reason", "error", "err", "detail"),
			})
			continue
		}
		out = append(out, batchItem{Message: string(bytes.TrimSpace(e))})
	}
	return out
}

// firstString returns the first of keys that holds a non-empty scalar.
func firstString(obj map[string]json.RawMessage, keys ...string) string {
	for _, k := range keys {
		v, ok := obj[k]
		if !ok {
			continue
		}
		var s flex.String
		if json.Unmarshal(v, &s) == nil && s != "" {
			return string(s)
		}
	}
	return ""
}

// successIsTrue reports whether success is the bool true (the snapshot answer).
func successIsTrue(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "true"
}

// successIsFalse reports whether success is the bool false.
func successIsFalse(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "false"
}

// vendorMessage is whatever message the answer carries.
func (a batchAnswer) vendorMessage() string {
	for _, s := range []flex.String{a.Message, a.Msg, a.Error} {
		if s != "" {
			return string(s)
		}
	}
	return ""
}

// errorBody extracts a message from an error response body of unknown format: a JSON
// object with a message-like key, or short plain text.
func errorBody(b []byte) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) == nil {
		if m := firstString(obj, "message", "msg", "error", "detail", "reason"); m != "" {
			return m
		}
	}
	return ""
}
