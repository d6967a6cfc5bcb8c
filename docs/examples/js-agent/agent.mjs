// An outside A2A agent written with the A2A JavaScript SDK (@a2a-js/sdk, A2A 1.0): it counts the letters
// of a quoted text. Podium adds it by URL: podium agents add http://127.0.0.1:9302
//
//   npm install        (installs @a2a-js/sdk and express from package.json)
//   PORT=9302 node agent.mjs
import express from "express";
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore } from "@a2a-js/sdk/server";
import { agentCardHandler, jsonRpcHandler, UserBuilder } from "@a2a-js/sdk/server/express";
import { TaskState } from "@a2a-js/sdk";

const port = Number(process.env.PORT || 9302);
const url = `http://127.0.0.1:${port}`;

const card = {
  name: "letter-counter",
  description: "Counts the letters in a quoted text.",
  version: "1.0.0",
  supportedInterfaces: [{ url, protocolBinding: "JSONRPC", protocolVersion: "1.0", tenant: "" }],
  capabilities: { streaming: false, pushNotifications: false, extensions: [] },
  defaultInputModes: ["text/plain"],
  defaultOutputModes: ["text/plain", "application/json"],
  skills: [
    {
      id: "letter-count",
      name: "Letter count",
      description: "Counts the letters in a quoted text, ignoring spaces and punctuation.",
      tags: ["letters", "count", "characters", "spelling"],
      examples: ["How many letters are in 'hello world'?"],
      inputModes: [],
      outputModes: [],
      securityRequirements: [],
    },
  ],
  securitySchemes: {},
  securityRequirements: [],
  signatures: [],
};

const text = (part) => (part.content?.$case === "text" ? part.content.value : "");

class LetterCounter {
  async execute(ctx, bus) {
    const asked = ctx.userMessage.parts.map(text).join(" ");
    const quoted = asked.match(/["'“‘]([^"'”’]+)["'”’]/);
    const letters = (quoted ? quoted[1] : asked).match(/\p{L}/gu) || [];
    const result = `${letters.length} letters`;
    const ids = { taskId: ctx.taskId, contextId: ctx.contextId };
    // the first event is the task; then its artifact; then its final status
    bus.publish(AgentEvent.task({
      id: ctx.taskId, contextId: ctx.contextId, artifacts: [], history: [ctx.userMessage], metadata: undefined,
      status: { state: TaskState.TASK_STATE_WORKING, message: undefined, timestamp: new Date().toISOString() },
    }));
    bus.publish(AgentEvent.artifactUpdate({
      ...ids, append: false, lastChunk: true, metadata: undefined,
      artifact: {
        artifactId: `${ctx.taskId}-count`, name: "count", description: "", metadata: undefined, extensions: [],
        parts: [
          { content: { $case: "text", value: result }, metadata: undefined, filename: "", mediaType: "text/plain" },
          { content: { $case: "data", value: { count: letters.length, result } }, metadata: undefined,
            filename: "", mediaType: "application/json" },
        ],
      },
    }));
    bus.publish(AgentEvent.statusUpdate({
      ...ids, metadata: undefined,
      status: { state: TaskState.TASK_STATE_COMPLETED, message: undefined, timestamp: new Date().toISOString() },
    }));
    bus.finished();
  }

  async cancelTask() {}
}

const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new LetterCounter());
const app = express();
app.use("/.well-known/agent-card.json", agentCardHandler({ agentCardProvider: handler }));
app.use("/", jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
app.listen(port, "127.0.0.1", () => console.log(`letter-counter ready: ${url}`));
