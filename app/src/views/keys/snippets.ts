/**
 * Ready-to-run code for a new key: the `openai` client in Node and in Python, and curl, each pointed at this
 * gateway's `/v1` with the key and a chat completion against one of the models the key may call.
 */
export interface Snippet {
  language: string;
  title: string;
  code: string;
}

export function keySnippets(baseUrl: string, apiKey: string, model: string): Snippet[] {
  const node = `import OpenAI from "openai";

const client = new OpenAI({
  baseURL: "${baseUrl}",
  apiKey: "${apiKey}",
});

const completion = await client.chat.completions.create({
  model: "${model}",
  messages: [{ role: "user", content: "Hello!" }],
});
console.log(completion.choices[0].message.content);`;
  const python = `from openai import OpenAI

client = OpenAI(
    base_url="${baseUrl}",
    api_key="${apiKey}",
)

completion = client.chat.completions.create(
    model="${model}",
    messages=[{"role": "user", "content": "Hello!"}],
)
print(completion.choices[0].message.content)`;
  const curl = `curl ${baseUrl}/chat/completions \\
  -H "Authorization: Bearer ${apiKey}" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "${model}", "messages": [{"role": "user", "content": "Hello!"}]}'`;
  return [
    { language: "javascript", title: "Node (openai)", code: node },
    { language: "python", title: "Python (openai)", code: python },
    { language: "shell", title: "curl", code: curl },
  ];
}
