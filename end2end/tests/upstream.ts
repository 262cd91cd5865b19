// A local server speaking OpenAI's streaming wire format, for the end-to-end tests that chat:
// its answer depends on the question (see `script`), and it keeps every request it received.
import http from "node:http";
import { Page } from "@playwright/test";
import { expect, hydrated } from "./fixtures";

const upstreamPort = Number(process.env.E2E_UPSTREAM_PORT || 3101);

export type Upstream = { server: http.Server; requests: any[] };

const CODE_ANSWER = [
  "Here is the file:\n\n",
  "```rust src/main.rs\n",
  "fn main() {\n",
  '    println!("hello from the chat");\n',
  "}\n",
  "```\n",
];

export function words(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `word${index} `);
}

/** The answer's pieces and the pause between them, from the last question. */
function script(question: string): { pieces: string[]; gap: number } {
  if (question.includes("code")) return { pieces: CODE_ANSWER, gap: 20 };
  if (question.includes("long")) return { pieces: words(30), gap: 200 };
  return { pieces: ["Hello", " from", " the", " local", " model."], gap: 60 };
}

function chunk(content: string | null, finish: string | null) {
  const delta = content === null ? {} : { content };
  return `data: ${JSON.stringify({
    id: "chatcmpl-e2e",
    object: "chat.completion.chunk",
    created: 1,
    model: "coder",
    choices: [{ index: 0, delta, finish_reason: finish }],
  })}\n\n`;
}

export function startUpstream(): Promise<Upstream> {
  const upstream: Upstream = { server: undefined as any, requests: [] };
  upstream.server = http.createServer((request, response) => {
    if (request.method === "GET" && request.url === "/v1/models") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ object: "list", data: [{ id: "coder", object: "model", created: 1, owned_by: "e2e" }] }));
      return;
    }
    let body = "";
    request.on("data", (part) => (body += part));
    request.on("end", async () => {
      const parsed = JSON.parse(body);
      upstream.requests.push(parsed);
      const messages = parsed.messages as { role: string; content: string }[];
      const question = messages.filter((message) => message.role === "user").pop()?.content ?? "";
      const { pieces, gap } = script(question);
      let closed = false;
      response.on("close", () => (closed = true));
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (const piece of pieces) {
        if (closed) return;
        response.write(chunk(piece, null));
        await new Promise((resolve) => setTimeout(resolve, gap));
      }
      response.write(chunk(null, "stop"));
      response.write(`data: ${JSON.stringify({ id: "chatcmpl-e2e", object: "chat.completion.chunk", created: 1, model: "coder", choices: [], usage: { prompt_tokens: 42, completion_tokens: pieces.length, total_tokens: 42 + pieces.length } })}\n\n`);
      response.end("data: [DONE]\n\n");
    });
  });
  return new Promise((resolve) => upstream.server.listen(upstreamPort, "127.0.0.1", () => resolve(upstream)));
}

export async function addLocalProvider(page: Page) {
  await page.goto("/settings/providers");
  await hydrated(page);
  await page.getByRole("combobox", { name: "Provider" }).selectOption("openai_compatible");
  await page.getByLabel("Label").fill("local");
  await page.getByLabel("Server address").fill(`http://127.0.0.1:${upstreamPort}/v1`);
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.locator(".credential").filter({ hasText: "local" })).toBeVisible();
}

