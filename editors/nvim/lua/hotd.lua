-- hotd for Neovim: the built-in LSP client on `hotd lsp`, so that `:write` of a Python buffer patches
-- every running process that runs the file. Works on Neovim 0.7.2 and later: it uses
-- vim.lsp.start_client and vim.lsp.buf_attach_client (vim.lsp.start is 0.8+).
local M = {}

local defaults = {
  cmd = { "hotd", "lsp" }, -- the language server; cmd[1] may be a full path
  filetypes = { "python" },
  messages = "normal", -- "errors": only failed patches; "normal": every patch; "off": none
}

local config = vim.deepcopy(defaults)
local client_id = nil
local last_patch = nil -- the last `hotd/patched` notification
local processes = {} -- the last answer of hotd.listProcesses

local function notify(text, level)
  vim.notify(text, level or vim.log.levels.INFO, { title = "hotd" })
end

local function basename(path)
  return (path:gsub("^.*/", ""))
end

local function error_text(err)
  if type(err) == "string" then
    return err
  elseif type(err) == "table" then
    return (err.type or "error") .. ": " .. (err.message or "")
  end
  return ""
end

local problem_statuses = { failed = true, partial = true, timeout = true, rude = true }

-- "updated price_of (line 14)", "rude Point (line 5): dataclass fields changed"
local function describe_result(result)
  local text = result.status .. " " .. (type(result.qualname) == "string" and result.qualname or result.kind or "statement")
  if type(result.line) == "number" then
    text = text .. " (line " .. result.line .. ")"
  end
  local why = result.message
  if result.status == "failed" and result.error ~= vim.NIL and result.error ~= nil then
    why = error_text(result.error)
  end
  if (result.status == "rude" or result.status == "failed") and why and why ~= "" then
    text = text .. ": " .. why
  end
  return text
end

-- Lines describing a `hotd/patched` notification, and whether it needs the user's attention.
function M.describe_patch(patched)
  local name = basename(patched.file)
  if #patched.errors > 0 then
    local lines = { name .. ": syntax errors, nothing applied" }
    for _, e in ipairs(patched.errors) do
      table.insert(lines, string.format("  line %d:%d %s", e.line, e.column, e.message))
    end
    return lines, true
  end
  if #patched.processes == 0 then
    return { name .. ": saved; no attached process runs it" }, false
  end
  local lines, problem = {}, false
  for _, outcome in ipairs(patched.processes) do
    problem = problem or problem_statuses[outcome.status] or false
    table.insert(lines, string.format("%s in pid %d: %s", name, outcome.pid, outcome.status))
    for _, result in ipairs((outcome.result or {}).results or {}) do
      if result.status ~= "skipped" then
        table.insert(lines, "  " .. describe_result(result))
      end
    end
  end
  return lines, problem
end

-- One line for a patch that needs no attention, so that a :write does not end in a "Press ENTER"
-- prompt: "app.py: applied in pid 4242: updated greeting", "app.py: applied in 3 processes: ...".
function M.summarize_patch(patched)
  local name = basename(patched.file)
  if #patched.processes == 0 then
    return name .. ": saved; no attached process runs it"
  end
  local changes, seen = {}, {}
  for _, outcome in ipairs(patched.processes) do
    for _, result in ipairs((outcome.result or {}).results or {}) do
      local what = result.status .. " " .. (type(result.qualname) == "string" and result.qualname or result.kind or "statement")
      if result.status ~= "skipped" and result.status ~= "shifted" and not seen[what] then
        seen[what] = true
        table.insert(changes, what)
      end
    end
  end
  local where = #patched.processes == 1 and ("pid " .. patched.processes[1].pid) or (#patched.processes .. " processes")
  local line = name .. ": " .. patched.processes[1].status .. " in " .. where
  if #changes > 3 then
    changes = { changes[1], changes[2], changes[3], "and " .. (#changes - 3) .. " more" }
  end
  return #changes > 0 and (line .. ": " .. table.concat(changes, ", ")) or line
end

local refresh_processes -- defined below, with the commands

local function on_patched(_, patched)
  last_patch = patched
  refresh_processes() -- the statusline's count: a save may come from a process started since
  if config.messages == "off" then
    return
  end
  local lines, problem = M.describe_patch(patched)
  if problem then
    notify("hotd: " .. table.concat(lines, "\n"), vim.log.levels.WARN)
  elseif config.messages ~= "errors" then
    notify("hotd: " .. M.summarize_patch(patched))
  end
end

local function client()
  return client_id and vim.lsp.get_client_by_id(client_id) or nil
end

-- Starts `hotd lsp` once; every Python buffer shares the client (the daemon serves them all).
function M.start()
  if client() then
    return client_id
  end
  if vim.fn.executable(config.cmd[1]) ~= 1 then
    notify(
      "hotd: cannot find `" .. config.cmd[1] .. "`: install hotd or pass its path, setup{ cmd = { '/path/to/hotd', 'lsp' } }",
      vim.log.levels.ERROR
    )
    return nil
  end
  client_id = vim.lsp.start_client({
    name = "hotd",
    cmd = config.cmd,
    root_dir = vim.loop.cwd(),
    handlers = {
      ["hotd/patched"] = on_patched,
      ["hotd/processesChanged"] = function(_, changed)
        processes = changed.processes or {}
      end,
    },
    on_init = function()
      vim.schedule(function()
        refresh_processes() -- the statusline counts the processes attached before this editor
      end)
    end,
    on_exit = function(code)
      client_id = nil
      if code ~= 0 then
        vim.schedule(function()
          notify("hotd: `" .. table.concat(config.cmd, " ") .. "` exited with code " .. code, vim.log.levels.ERROR)
        end)
      end
    end,
  })
  return client_id
end

function M.attach_buffer(bufnr)
  local id = M.start()
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
end

-- workspace/executeCommand on the hotd client; `done(result)` on success, errors are messages.
local function execute(command, arguments, done)
  local c = client() or (M.start() and client())
  if not c then
    return
  end
  c.request("workspace/executeCommand", { command = command, arguments = arguments }, function(err, result)
    if err then
      notify("hotd: " .. command .. " failed: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif done then
      done(result)
    end
  end)
end

refresh_processes = function(done)
  execute("hotd.listProcesses", {}, function(result)
    processes = result.processes or {}
    if done then
      done(processes)
    end
  end)
end

local function describe_process(p)
  local argv = p.argv or {}
  local command = #argv > 0 and table.concat(argv, " ") or (p.executable or "python")
  local files = {}
  for _, f in ipairs(p.files or {}) do
    table.insert(files, basename(f.file))
  end
  return string.format("%d  %s  [%s]", p.pid, command, table.concat(files, ", "))
end

local function pid_argument(args)
  local pid = tonumber(args)
  if not pid or pid <= 0 or pid ~= math.floor(pid) then
    notify("hotd: expected a process id, got `" .. args .. "`", vim.log.levels.ERROR)
    return nil
  end
  return pid
end

function M.attach_process(pid)
  notify("hotd: attaching to pid " .. pid .. "...")
  execute("hotd.attach", { pid }, function()
    notify("hotd: attached to pid " .. pid .. "; saves now patch it")
    refresh_processes()
  end)
end

function M.detach_process(pid)
  execute("hotd.detach", { pid }, function()
    notify("hotd: detached from pid " .. pid)
    refresh_processes()
  end)
end

function M.show_processes()
  refresh_processes(function(list)
    if #list == 0 then
      notify("hotd: no attached process (start one with `hotd run script.py`, or :HotdAttach {pid})")
      return
    end
    local lines = { "hotd: attached processes" }
    for _, p in ipairs(list) do
      table.insert(lines, "  " .. describe_process(p))
    end
    notify(table.concat(lines, "\n"))
  end)
end

function M.show_status()
  local c = client()
  local lines = {
    "hotd: " .. (c and ("language server running (" .. table.concat(config.cmd, " ") .. ")") or "language server not running"),
    "  attached processes: " .. #processes,
  }
  if last_patch then
    table.insert(lines, "  last patch:")
    for _, line in ipairs((M.describe_patch(last_patch))) do
      table.insert(lines, "    " .. line)
    end
  end
  notify(table.concat(lines, "\n"))
  if c then
    refresh_processes()
  end
end

-- For a statusline: "hotd 2" (attached processes), with "!" when the last patch needs attention.
function M.statusline()
  if not client() then
    return ""
  end
  local problem = false
  if last_patch then
    problem = select(2, M.describe_patch(last_patch))
  end
  return "hotd " .. #processes .. (problem and "!" or "")
end

function M.last_patch()
  return last_patch
end

function M.client_id()
  return client_id
end

function M.setup(options)
  config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), options or {})
  local group = vim.api.nvim_create_augroup("hotd", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = config.filetypes,
    callback = function(event)
      M.attach_buffer(event.buf)
    end,
  })
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(config.filetypes, vim.bo[bufnr].filetype) then
      M.attach_buffer(bufnr)
    end
  end
  vim.api.nvim_create_user_command("HotdAttach", function(args)
    local pid = pid_argument(args.args)
    if pid then
      M.attach_process(pid)
    end
  end, { nargs = 1, desc = "hotd: make a running Python process live-editable" })
  vim.api.nvim_create_user_command("HotdDetach", function(args)
    local pid = pid_argument(args.args)
    if pid then
      M.detach_process(pid)
    end
  end, { nargs = 1, desc = "hotd: stop patching a process" })
  vim.api.nvim_create_user_command("HotdProcesses", M.show_processes, { desc = "hotd: list attached processes" })
  vim.api.nvim_create_user_command("HotdStatus", M.show_status, { desc = "hotd: language server and last patch" })
end

return M
