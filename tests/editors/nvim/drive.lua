-- Drives a real Neovim (headless in the test, in tmux for the screenshot) like a user would: the
-- hotd plugin from editors/nvim is set up, the Python file given on the command line is opened, and
-- each edit of $HOTD_NVIM_EDITS (a JSON list of {"find", "replace"}) is made in the buffer, written
-- with :write, and followed by a wait for the plugin's `hotd/patched` result and the diagnostics.
-- What the editor saw is written to $HOTD_NVIM_RESULT as JSON; then Neovim quits unless
-- $HOTD_NVIM_STAY is set. Used with: nvim -u drive.lua FILE
local env = vim.env
vim.opt.runtimepath:prepend(env.HOTD_NVIM_PLUGIN)
vim.opt.swapfile = false
local hotd = require("hotd")
hotd.setup({ cmd = { env.HOTD_BINARY, "lsp" } })

local result = { steps = {}, messages = {} }
-- What the plugin tells the user, in order.
local notify = vim.notify
vim.notify = function(text, level, options)
  table.insert(result.messages, text)
  return notify(text, level, options)
end

local function finish(failure)
  result.failure = failure
  local out = io.open(env.HOTD_NVIM_RESULT, "w")
  out:write(vim.fn.json_encode(result))
  out:close()
  if not env.HOTD_NVIM_STAY then
    vim.cmd("qall!")
  end
end

-- Calls `next_step` once `condition()` holds, polling with timers so that the UI keeps drawing.
local function when(condition, what, next_step)
  local deadline = vim.loop.now() + 20000
  local function check()
    local ok, value = pcall(condition)
    if ok and value then
      return next_step()
    elseif not ok then
      return finish(what .. ": " .. tostring(value))
    elseif vim.loop.now() > deadline then
      return finish("timed out waiting for " .. what)
    end
    vim.defer_fn(check, 50)
  end
  check()
end

local function diagnostics()
  local list = {}
  for _, d in ipairs(vim.diagnostic.get(0)) do
    table.insert(list, { line = d.lnum + 1, severity = d.severity, code = d.code, message = d.message })
  end
  return list
end

local function edit_step(edits, index)
  if index > #edits then
    -- A pid that is not one is refused, and nothing is attempted.
    local before = #result.messages
    pcall(vim.cmd, "HotdAttach 1.5") -- an error message, raised as an error inside vim.cmd
    result.bad_pid_messages = vim.list_slice(result.messages, before + 1)
    return finish(nil)
  end
  local edit = edits[index]
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  local found = nil
  for number, line in ipairs(lines) do
    if line == edit.find then
      found = number
    end
  end
  if not found then
    return finish("line not found in the buffer: " .. edit.find)
  end
  vim.api.nvim_buf_set_lines(0, found - 1, found, false, vim.split(edit.replace, "\n", { plain = true }))
  local before = hotd.last_patch()
  local messages_before = #result.messages
  vim.cmd("write")
  when(function()
    return hotd.last_patch() ~= before
  end, "hotd/patched after edit " .. index, function()
    -- The statusline counts the app once the plugin asked (nothing before this editor attached it).
    when(function()
      return hotd.statusline():match("^hotd 1")
    end, "the statusline to count the app", function()
      -- publishDiagnostics is sent just before hotd/patched: let its handler run first.
      vim.defer_fn(function()
        table.insert(result.steps, { patched = hotd.last_patch(), diagnostics = diagnostics(),
                                     statusline = hotd.statusline(),
                                     messages = vim.list_slice(result.messages, messages_before + 1) })
        edit_step(edits, index + 1)
      end, 200)
    end)
  end)
end

vim.api.nvim_create_autocmd("VimEnter", {
  callback = function()
    local edits = vim.fn.json_decode(table.concat(vim.fn.readfile(env.HOTD_NVIM_EDITS), "\n"))
    when(function()
      local client = hotd.client_id() and vim.lsp.get_client_by_id(hotd.client_id())
      return client and client.initialized and vim.lsp.buf_is_attached(0, hotd.client_id())
    end, "the hotd language server to attach to the buffer", function()
      edit_step(edits, 1)
    end)
  end,
})
