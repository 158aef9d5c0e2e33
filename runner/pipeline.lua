-- HTTP/1.1 pipelining for wrk, as TFB's pipeline.lua: the default request repeated `depth` times
-- (the first script argument) and written as one batch on every request cycle.
init = function(args)
  local depth = tonumber(args[1]) or 1
  local requests = {}
  for i = 1, depth do
    requests[i] = wrk.format()
  end
  batch = table.concat(requests)
end

request = function()
  return batch
end
