// Calls Dataport over gRPC-Web from the page, as a web app would, and
// writes what each call answered into <pre id="results"> as JSON for
// tests/browser/run to read. The services come from the descriptor set the
// run script builds from proto/ (no generated code): SayHello, GetMACD and
// the server stream dataport.position.v1 Watch, each without and with the
// token given in the page's query string.
import { createClient, ConnectError } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const query = new URLSearchParams(location.search);
const server = query.get("server");
const token = query.get("token");

function transport(withToken) {
  const authorize = (next) => async (req) => {
    if (withToken) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return createGrpcWebTransport({ baseUrl: server, interceptors: [authorize] });
}

function method(service, name) {
  return service.methods.find((m) => m.name === name).localName;
}

async function outcome(call) {
  try {
    return { ok: await call() };
  } catch (e) {
    return { code: ConnectError.from(e).code, message: ConnectError.from(e).rawMessage };
  }
}

async function run() {
  const bytes = new Uint8Array(await (await fetch("set.binpb")).arrayBuffer());
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
  const greeter = registry.getService("helloworld.Greeter");
  const indicator = registry.getService("idc.Indicator");
  const position = registry.getService("dataport.position.v1.PositionService");
  const results = {};
  for (const withToken of [false, true]) {
    const key = withToken ? "token" : "anonymous";
    const t = transport(withToken);
    const hello = createClient(greeter, t);
    const macd = createClient(indicator, t);
    const watch = createClient(position, t);
    results[key] = {
      hello: await outcome(async () => (await hello[method(greeter, "SayHello")]({ name: "browser" })).message),
      macd: await outcome(async () => {
        const reply = await macd[method(indicator, "GetMACD")]({ symbol: "AAPL", startDate: "2010-01-04", endDate: "2010-01-08" });
        return reply.macd.map((row) => [row.date, row.macd]);
      }),
      watch: await outcome(async () => {
        const seen = [];
        const abort = new AbortController();
        for await (const reply of watch[method(position, "Watch")]({ entities: ["default"] }, { signal: abort.signal })) {
          seen.push(reply.position.entity);
          if (seen.length === 3) {
            abort.abort();
            break;
          }
        }
        return seen;
      }),
    };
  }
  return results;
}

run()
  .then((results) => { document.getElementById("results").textContent = JSON.stringify(results); })
  .catch((e) => { document.getElementById("results").textContent = JSON.stringify({ error: String(e) }); });
