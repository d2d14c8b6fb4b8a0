/**
 * API keys (#/keys): create one by signing with the wallet, see its secret once with ready snippets, list
 * the keys (through the tab's read session) and revoke one. Keys live at the gateway, not on-chain: every
 * change here is a wallet signature over an EIP-712 message bound to this deployment, never a transaction.
 */
import { useState } from "react";
import { listGatewayModels, type CreateApiKeyReturnType } from "../../../../client";
import { useApp } from "../../app-state";
import { RequireWallet } from "../../components/require-wallet";
import { SessionGate } from "../../components/session-gate";
import { Card } from "../../components/card";
import { useLoad } from "../../lib/use-load";
import { useSession } from "../../lib/use-session";
import { CreateKeyForm } from "./create-key-form";
import { KeyList } from "./key-list";
import { NewKeySecret } from "./new-key-secret";

export function KeysPage() {
  const { client } = useApp();
  const session = useSession();
  const models = useLoad(() => listGatewayModels(client), [client.gateway?.url]);
  const [created, setCreated] = useState<CreateApiKeyReturnType | undefined>();
  // Bumped when a key is created or revoked here, so the list reads the gateway again.
  const [changes, setChanges] = useState(0);

  const snippetModel = created?.models?.[0] ?? models.data?.find((model) => model.tollgate.kind === "chat")?.id ?? models.data?.[0]?.id ?? "MODEL";
  return (
    <RequireWallet purpose="create and manage API keys">
      {created && <NewKeySecret created={created} model={snippetModel} onDone={() => setCreated(undefined)} />}
      <CreateKeyForm models={models} onCreated={(key) => (setCreated(key), setChanges((n) => n + 1))} />
      <Card title="Your API keys">
        <SessionGate session={session} purpose="see your API keys">
          {(token) => <KeyList session={token} changes={changes} onChanged={() => setChanges((n) => n + 1)} onExpired={session.forget} isExpired={session.isExpired} />}
        </SessionGate>
      </Card>
    </RequireWallet>
  );
}
