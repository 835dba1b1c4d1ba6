-- aioamp-rpmsg.lua: a Wireshark dissector for the rpmsg captures aioamp writes (pcapng, one
-- interface per bus, link type LINKTYPE_USER0 = 147 unless the capture chose another USERn).
--
-- Installed by `aioamp capture --install-dissector` into Wireshark's personal plugins folder;
-- or loaded for one run: `tshark -X lua_script:aioamp-rpmsg.lua -r capture.pcapng`.
-- The format is described in aioamp's docs/capture.md and rpmsg/capture/writer.py.
--
-- Each packet is, all little-endian:
--   struct aioamp_rpmsg_pseudo_hdr { u8 version (1); u8 direction (0 sent, 1 received);
--       u8 role (of the capturing bus: 0 host, 1 remote, 255 other); u8 flags (bit 0
--       synthetic); u32 bus_id; }                                             -- 8 bytes
--   struct rpmsg_hdr { u32 src; u32 dst; u32 reserved; u16 len; u16 flags; }  -- 16 bytes
--   u8 payload[len];
-- A message to address 53 is a name-service message (Linux include/linux/rpmsg/ns.h):
--   struct rpmsg_ns_msg { char name[32]; u32 addr; u32 flags; }  -- flags 0 CREATE, 1 DESTROY
--
-- Payloads go to the dissector registered for their channel's service name in the table
-- "rpmsg.service" (names are learned from the capture's own announcements), then to the
-- heuristic list "rpmsg" (where the Lua API has DissectorTable.heuristic_new: Wireshark 4.0
-- has not), then to "data".

local PSEUDO_LEN = 8
local HDR_LEN = 16
local NS_ADDR = 53
local NS_MSG_LEN = 40
local LINKTYPE_USER0 = 147

local rpmsg = Proto("rpmsg", "rpmsg (aioamp capture)")

local directions = { [0] = "sent", [1] = "received" }
local roles = { [0] = "host", [1] = "remote", [255] = "other" }
local ns_flag_names = { [0] = "CREATE", [1] = "DESTROY" }

local f = {
    version = ProtoField.uint8("rpmsg.capture.version", "Pseudo-header version"),
    direction = ProtoField.uint8("rpmsg.capture.direction", "Direction", base.DEC, directions),
    role = ProtoField.uint8("rpmsg.capture.role", "Capturing bus role", base.DEC, roles),
    cflags = ProtoField.uint8("rpmsg.capture.flags", "Capture flags", base.HEX),
    synthetic = ProtoField.bool("rpmsg.capture.synthetic", "Synthetic (not seen on the wire)",
        8, nil, 0x01),
    bus_id = ProtoField.uint32("rpmsg.capture.bus_id", "Bus id"),
    src = ProtoField.uint32("rpmsg.src", "Source address"),
    dst = ProtoField.uint32("rpmsg.dst", "Destination address"),
    reserved = ProtoField.uint32("rpmsg.reserved", "Reserved", base.HEX),
    len = ProtoField.uint16("rpmsg.len", "Length"),
    flags = ProtoField.uint16("rpmsg.flags", "Flags", base.HEX),
    service = ProtoField.string("rpmsg.service", "Service"),
    payload = ProtoField.bytes("rpmsg.payload", "Payload"),
    ns_name = ProtoField.string("rpmsg.ns.name", "Name"),
    ns_addr = ProtoField.uint32("rpmsg.ns.addr", "Address"),
    ns_flags = ProtoField.uint32("rpmsg.ns.flags", "Flags", base.DEC, ns_flag_names),
}
rpmsg.fields = {
    f.version, f.direction, f.role, f.cflags, f.synthetic, f.bus_id, f.src, f.dst,
    f.reserved, f.len, f.flags, f.service, f.payload, f.ns_name, f.ns_addr, f.ns_flags,
}

local e_short = ProtoExpert.new("rpmsg.short", "Packet shorter than the headers",
    expert.group.MALFORMED, expert.severity.ERROR)
local e_version = ProtoExpert.new("rpmsg.capture.unknown_version",
    "Unknown pseudo-header version", expert.group.UNDECODED, expert.severity.WARN)
local e_len = ProtoExpert.new("rpmsg.len.mismatch",
    "Header length disagrees with the payload captured", expert.group.MALFORMED,
    expert.severity.WARN)
local e_ns = ProtoExpert.new("rpmsg.ns.malformed", "Malformed name-service message",
    expert.group.MALFORMED, expert.severity.WARN)
rpmsg.experts = { e_short, e_version, e_len, e_ns }

rpmsg.prefs.linktype = Pref.uint("Link type", LINKTYPE_USER0,
    "The captures' pcapng link type: LINKTYPE_USER0..USER15 = 147..162 (aioamp's default: 147)")

local service_table = DissectorTable.new("rpmsg.service", "rpmsg service name", ftypes.STRING,
    base.NONE, rpmsg)
local has_heuristics = pcall(function() DissectorTable.heuristic_new("rpmsg", rpmsg) end)
local data_dissector = Dissector.get("data")

-- Service names by bus and address, learned from announcements as the packets go by in order
-- (the first pass); each packet's name is kept so that a later re-dissection agrees. A bus is
-- its interface: unique also in a file mergecap made of several captures (where each file's
-- bus ids start at 0 again).
local services, seen
local f_interface_id = Field.new("frame.interface_id")

function rpmsg.init()
    services = {}
    seen = {}
end

local function bus_services(bus)
    local s = services[bus]
    if s == nil then
        s = { mine = {}, peer = {} }
        services[bus] = s
    end
    return s
end

local function learn_ns(bus, dir, name, addr, flags)
    -- dir 0: our bus announced (an address on its side); 1: the peer did.
    local side = bus_services(bus)[dir == 0 and "mine" or "peer"]
    if flags == 0 then
        side[addr] = name
    elseif flags == 1 then
        side[addr] = nil
    end
end

local function service_of(bus, dir, src, dst)
    local s = bus_services(bus)
    local mine, peer = src, dst
    if dir == 1 then
        mine, peer = dst, src
    end
    return s.mine[mine] or s.peer[peer]
end

local function dissect_ns(tvb, pinfo, tree, bus, dir)
    local ns = tree:add(rpmsg, tvb(), "Name-service message")
    if tvb:len() ~= NS_MSG_LEN then
        ns:add_proto_expert_info(e_ns, "A name-service message is 40 bytes, not " .. tvb:len())
        return nil
    end
    local name = tvb(0, 32):stringz()
    local addr = tvb(32, 4):le_uint()
    local flags = tvb(36, 4):le_uint()
    ns:set_text("Name-service message: " .. (ns_flag_names[flags] or "flags " .. flags) ..
        " " .. name .. " at " .. addr)
    ns:add(f.ns_name, tvb(0, 32), name)
    ns:add_le(f.ns_addr, tvb(32, 4))
    ns:add_le(f.ns_flags, tvb(36, 4))
    if not pinfo.visited then
        learn_ns(bus, dir, name, addr, flags)
    end
    return string.format("NS %s %s @ %d", ns_flag_names[flags] or ("flags " .. flags), name, addr)
end

local function dissect_payload(tvb, pinfo, tree, root, name)
    if name ~= nil then
        local sub = service_table:get_dissector(name)
        if sub ~= nil then
            sub:call(tvb, pinfo, root)
            return
        end
    end
    if has_heuristics and DissectorTable.try_heuristics("rpmsg", tvb, pinfo, root) then
        return
    end
    data_dissector:call(tvb, pinfo, root)
end

function rpmsg.dissector(tvb, pinfo, root)
    pinfo.cols.protocol:set("RPMSG")
    local tree = root:add(rpmsg, tvb())
    if tvb:len() < PSEUDO_LEN then
        tree:add_proto_expert_info(e_short)
        return
    end
    local version = tvb(0, 1):uint()
    local pseudo = tree:add(rpmsg, tvb(0, PSEUDO_LEN), "Capture pseudo-header")
    pseudo:add(f.version, tvb(0, 1))
    if version ~= 1 then
        pseudo:add_proto_expert_info(e_version)
        data_dissector:call(tvb(PSEUDO_LEN):tvb(), pinfo, root)
        return
    end
    local dir = tvb(1, 1):uint()
    local role = tvb(2, 1):uint()
    local iface = f_interface_id()
    local bus = iface and iface.value or tvb(4, 4):le_uint()
    pseudo:add(f.direction, tvb(1, 1))
    pseudo:add(f.role, tvb(2, 1))
    local cflags = pseudo:add(f.cflags, tvb(3, 1))
    cflags:add(f.synthetic, tvb(3, 1))
    pseudo:add_le(f.bus_id, tvb(4, 4))
    if tvb:len() < PSEUDO_LEN + HDR_LEN then
        tree:add_proto_expert_info(e_short)
        return
    end

    local h = PSEUDO_LEN
    local src = tvb(h, 4):le_uint()
    local dst = tvb(h + 4, 4):le_uint()
    local len = tvb(h + 12, 2):le_uint()
    tree:add_le(f.src, tvb(h, 4))
    tree:add_le(f.dst, tvb(h + 4, 4))
    tree:add_le(f.reserved, tvb(h + 8, 4))
    local len_item = tree:add_le(f.len, tvb(h + 12, 2))
    tree:add_le(f.flags, tvb(h + 14, 2))
    local body = PSEUDO_LEN + HDR_LEN
    local captured = tvb:len() - body
    if captured ~= len then
        len_item:add_proto_expert_info(e_len, string.format(
            "Header length %d, payload captured %d bytes", len, captured))
    end

    -- Who is who: the capturing bus's role, and the peer's (a host talks to a remote).
    local me = roles[role] or "other"
    local peer = ({ host = "remote", remote = "host" })[me] or "peer"
    local from, to = me, peer
    if dir == 1 then
        from, to = peer, me
    end
    pinfo.cols.src:set(string.format("%s:%d", from, src))
    pinfo.cols.dst:set(string.format("%s:%d", to, dst))

    local payload = captured > 0 and tvb(body):tvb() or nil
    local info
    if dst == NS_ADDR and payload ~= nil then
        info = dissect_ns(payload, pinfo, tree, bus, dir)
    end
    local name
    if not pinfo.visited then
        name = service_of(bus, dir, src, dst)
        seen[pinfo.number] = name
    else
        name = seen[pinfo.number]
    end
    if name ~= nil then
        tree:add(f.service, name):set_generated()
    end
    tree:append_text(string.format(", %s -> %s, Src: %d, Dst: %d, Len: %d", from, to, src, dst,
        len))
    info = info or string.format("%d -> %d Len=%d%s", src, dst, len,
        name and (" [" .. name .. "]") or "")
    pinfo.cols.info:set(string.format("%s -> %s %s", from, to, info))
    if payload ~= nil then
        tree:add(f.payload, tvb(body))
        if dst ~= NS_ADDR then
            dissect_payload(payload, pinfo, tree, root, name)
        end
    end
end

local wtap_encap_table = DissectorTable.get("wtap_encap")
local registered

local function register(linktype)
    local encap = wtap_encaps["USER" .. (linktype - LINKTYPE_USER0)]
    if encap == nil then
        return -- not a user link type: keep the registration we have
    end
    if registered ~= nil then
        wtap_encap_table:remove(registered, rpmsg)
    end
    wtap_encap_table:add(encap, rpmsg)
    registered = encap
end

function rpmsg.prefs_changed()
    register(rpmsg.prefs.linktype)
end

register(LINKTYPE_USER0)
