-- HardMute guard (written by `hardmute guard on`; removed by `hardmute guard off`).
-- Runs in WirePlumber 0.4 and 0.5. Every client except hardmuted, WirePlumber and the PipeWire
-- server's own connection gets
-- default-deny permissions: nothing ("-") on any object, then "all" on each object that is not
-- guarded, granted again for every object that appears. Guarded objects (never granted to apps):
-- the physical capture nodes (Audio/Source*, Audio/Duplex, except HardMute's own app-facing
-- hardmute_mic), HardMute's gate input hardmute_capture, their ports and their links.
-- docs/threat-model.md lists what a same-user app can still undo.

local TRUSTED_BINARIES = { ["hardmuted"] = true, ["wireplumber"] = true }
local APP_NODE = "hardmute_mic"
local GATE_INPUT = "hardmute_capture"

local function trusted(props)
  local access = props["pipewire.access"]
  -- PipeWire < 0.3.83: module-access allowed hardmuted and WirePlumber by argv[0].
  if access == "allowed" then return true end
  -- 0.3.83+: the session manager's socket (module-access gave its clients everything at
  -- connect; PipeWire's own tools connect there too).
  local socket = props["pipewire.sec.socket"]
  if socket ~= nil and string.find(socket, "%-manager$") ~= nil then return true end
  -- hardmuted on the apps' socket; and where module-access was not set up by the guard. The
  -- binary name is what the client says (docs/threat-model.md: what stays open).
  local bin = props["application.process.binary"]
  if bin ~= nil and TRUSTED_BINARIES[bin] == true then return true end
  -- The server's connection to itself (its context's props: `core.daemon`), which in-server
  -- modules (filter-chain: HardMute's gate) make their nodes through; on the restricted apps'
  -- socket (PipeWire 0.3.83+) it would otherwise wait for permissions and the gate's nodes
  -- would never be made. pipewire-pulse runs the same binary without `core.daemon`.
  return bin == "pipewire" and props["core.daemon"] == "true"
end

local function guarded_node(props)
  local name = props["node.name"] or ""
  if name == GATE_INPUT then return true end
  if name == APP_NODE or props["hardmute.role"] ~= nil then return false end
  local class = props["media.class"] or ""
  return class == "Audio/Source" or class == "Audio/Source/Virtual" or class == "Audio/Duplex"
end

local function id_of(obj) return obj["bound-id"] end

local perm = {}      -- global id -> "all" (apps may use it) or "-" (guarded)
local node_of = {}   -- port or link id waiting for its node -> the node id(s)
local apps = {}      -- client global id -> client proxy

-- One call per change, and never "any" together with object ids in one call: PipeWire
-- 0.3.65's pw_impl_client_update_permissions keeps a pointer to its default entry across the
-- array growth an object id can cause, and crashed when both came in one call.
local function grant(id, p)
  perm[id] = p
  for _, client in pairs(apps) do client:update_permissions { [id] = p } end
end

local function node_state(nid)
  return nid ~= nil and perm[tonumber(nid)] or nil
end

-- A port or link is decided once every node it touches is: guarded if one of them is.
local function decide(id, nids)
  local p = "all"
  for _, nid in ipairs(nids) do
    local s = node_state(nid)
    if s == nil then node_of[id] = nids; return end
    if s == "-" then p = "-" end
  end
  node_of[id] = nil
  grant(id, p)
end

local gate_owner = nil   -- the client that hosts the gate's nodes (PipeWire's filter-chain)
local trust_client       -- defined below

local function on_node(node)
  local id = id_of(node)
  -- PipeWire 1.x checks that the clients owning two linked nodes see each other: the client
  -- that owns the gate's input must see the physical mic hardmuted links into it.
  if node.properties["node.name"] == GATE_INPUT then
    gate_owner = tonumber(node.properties["client.id"])
    if gate_owner ~= nil and trust_client ~= nil then trust_client(gate_owner) end
  end
  if guarded_node(node.properties) then
    Log.info("hardmute-guard: hiding node " .. id .. " " .. (node.properties["node.name"] or ""))
    grant(id, "-")
  else
    grant(id, "all")
  end
  for oid, nids in pairs(node_of) do decide(oid, nids) end
end

local function on_removed(obj)
  local id = id_of(obj)
  perm[id] = nil; node_of[id] = nil
end

-- Globals: a local object manager would be collected once this chunk returns.
nodes_om = ObjectManager { Interest { type = "node" } }
ports_om = ObjectManager { Interest { type = "port" } }
links_om = ObjectManager { Interest { type = "link" } }
others_om = ObjectManager {
  Interest { type = "device" }, Interest { type = "factory" }, Interest { type = "metadata" },
}
clients_om = ObjectManager { Interest { type = "client" } }

nodes_om:connect("object-added", function (_, o) on_node(o) end)
nodes_om:connect("object-removed", function (_, o) on_removed(o) end)
ports_om:connect("object-added", function (_, o)
  decide(id_of(o), { o.properties["node.id"] })
end)
ports_om:connect("object-removed", function (_, o) on_removed(o) end)
links_om:connect("object-added", function (_, o)
  decide(id_of(o), { o.properties["link.output.node"], o.properties["link.input.node"] })
end)
links_om:connect("object-removed", function (_, o) on_removed(o) end)
others_om:connect("object-added", function (_, o) grant(id_of(o), "all") end)
others_om:connect("object-removed", function (_, o) on_removed(o) end)

trust_client = function (cid)
  local client = apps[cid]
  if client ~= nil then
    apps[cid] = nil
    client:update_permissions { ["any"] = "all" }
    Log.info("hardmute-guard: client " .. cid .. " hosts the gate: trusted")
  end
end

clients_om:connect("object-added", function (_, client)
  local id = id_of(client)
  if trusted(client.properties) or id == gate_owner then
    -- module-access gave it everything unless it is hardmuted on the apps' socket.
    local a = client.properties["pipewire.access"]
    if a ~= "allowed" and a ~= "unrestricted" then client:update_permissions { ["any"] = "all" } end
    Log.info("hardmute-guard: client " .. id .. " trusted")
  else
    local table_now = {}
    for oid, p in pairs(perm) do table_now[oid] = p end
    table_now[id] = "all"
    client:update_permissions(table_now)
    -- A "restricted" client (module-access as the guard sets it up) starts with nothing. Any
    -- other was given everything at connect; it loses the guarded objects above, but is not
    -- sent "any": on PipeWire 0.3.65 revoking "any" walks the global list while destroying the
    -- client's resources, and PipeWire crashed in that walk.
    local a = client.properties["pipewire.access"]
    if a ~= "restricted" then
      Log.warning("hardmute-guard: client " .. id .. " has access " .. tostring(a) .. ": objects WirePlumber has not seen yet stay visible to it")
    end
    apps[id] = client
  end
  grant(id, "all")   -- client objects stay listed (pactl list clients, pw-cli ls Client)
end)
clients_om:connect("object-removed", function (_, client)
  apps[id_of(client)] = nil
  on_removed(client)
end)

perm[0] = "all"      -- the core
nodes_om:activate()
ports_om:activate()
links_om:activate()
others_om:activate()
clients_om:activate()
