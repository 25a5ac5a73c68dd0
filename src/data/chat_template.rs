//! Chat templates as Jinja, rendered by `minijinja` (the engine Hugging Face's Rust stack uses)
//! configured like transformers' sandbox: `trim_blocks`, `lstrip_blocks`, `raise_exception`,
//! `strftime_now` and Python's string methods (`minijinja-contrib`'s pycompat).

use anyhow::{anyhow, bail, Result};
use minijinja::{context, Environment, Error, ErrorKind, Value};
use std::sync::Arc;

/// Vicuna 1.1 (the seed's chat format); the default system prompt when the conversation has none.
pub const VICUNA_JINJA: &str = "{% if messages and messages[0]['role'] == 'system' %}{{ messages[0]['content'] }} {% set loop_messages = messages[1:] %}{% else %}A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. {% set loop_messages = messages %}{% endif %}\
{% for message in loop_messages %}{% if message['role'] == 'user' %}USER: {{ message['content'] }} {% elif message['role'] == 'assistant' %}ASSISTANT: {{ message['content'] }}{{ eos_token }}{% else %}{{ raise_exception('vicuna has no role ' + message['role']) }}{% endif %}{% endfor %}\
{% if add_generation_prompt %}ASSISTANT:{% endif %}";

/// ChatML (`<|im_start|>role\n...<|im_end|>\n`), as SmolLM2 and Qwen write it.
pub const CHATML_JINJA: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Plain: each user message on its own line, the reply right after it, then end-of-text.
pub const PLAIN_JINJA: &str = "{% for message in messages %}{% if message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}{% else %}{{ message['content'] }}\n{% endif %}{% endfor %}";

/// Rendering work allowed per conversation: a looping template fails instead of hanging.
const RENDER_FUEL: u64 = 50_000_000;

/// The special-token strings a template may use (`bos_token`, `eos_token`, ...), as
/// transformers passes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateTokens {
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub pad: Option<String>,
    pub unk: Option<String>,
}

/// One message as a template sees it (`message['role']`, `message['content']`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage<'a> {
    pub role: &'a str,
    pub content: &'a str,
}

/// A compiled chat template with the tokens it renders; cheap to clone (shared).
#[derive(Clone)]
pub struct ChatTemplate {
    env: Arc<Environment<'static>>,
    source: Arc<str>,
    tokens: TemplateTokens,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_len", &self.source.len())
            .field("tokens", &self.tokens)
            .finish()
    }
}

fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

fn strftime_now(format: String) -> Result<Value, Error> {
    use chrono::format::{Item, StrftimeItems};
    // chrono panics when displaying a malformed format; check it first.
    if StrftimeItems::new(&format).any(|i| matches!(i, Item::Error)) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: bad format {format:?}"),
        ));
    }
    Ok(Value::from(
        chrono::Local::now().format(&format).to_string(),
    ))
}

impl ChatTemplate {
    /// Compile `source`; `origin` names it in errors (a file, or `sft.template = vicuna`).
    pub fn new(source: &str, tokens: TemplateTokens, origin: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = env
            .syntax()
            .to_builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| anyhow!("{origin}: {e}"))?;
        env.set_syntax(syntax);
        env.set_fuel(Some(RENDER_FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| {
                anyhow!(
                    "{origin}: the chat template does not compile: {}",
                    one_line(&e)
                )
            })?;
        Ok(Self {
            env: Arc::new(env),
            source: source.into(),
            tokens,
        })
    }

    /// The Jinja source, as written to `chat_template.jinja` on export.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Render `messages`; `add_generation_prompt` appends what opens the assistant's reply.
    pub fn render(
        &self,
        messages: &[ChatMessage<'_>],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| context! { role => m.role, content => m.content })
            .collect();
        let t = &self.tokens;
        let ctx = context! {
            messages => msgs,
            add_generation_prompt => add_generation_prompt,
            bos_token => t.bos.clone().unwrap_or_default(),
            eos_token => t.eos.clone().unwrap_or_default(),
            pad_token => t.pad.clone(),
            unk_token => t.unk.clone(),
        };
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| anyhow!("chat template: {}", one_line(&e)))?;
        tmpl.render(ctx)
            .map_err(|e| anyhow!("chat template failed to render: {}", one_line(&e)))
    }
}

fn one_line(e: &Error) -> String {
    let mut s = e.to_string();
    if let Some(detail) = e.detail() {
        if !s.contains(detail) {
            s.push_str(&format!(" ({detail})"));
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Refuse a template source that is empty; `origin` names where it came from.
pub fn check_source(source: &str, origin: &str) -> Result<()> {
    if source.trim().is_empty() {
        bail!("{origin}: the chat template is empty");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<ChatMessage<'a>> {
        pairs
            .iter()
            .map(|(role, content)| ChatMessage { role, content })
            .collect()
    }

    #[test]
    fn raise_exception_is_a_render_error_and_strftime_now_is_today() {
        let t = ChatTemplate::new(
            "{% if messages|length == 0 %}{{ raise_exception('no messages') }}{% endif %}{{ strftime_now('%Y') }} {{ messages[0].content.strip() }}",
            TemplateTokens::default(),
            "test",
        )
        .unwrap();
        let err = t.render(&[], false).unwrap_err().to_string();
        assert!(err.contains("no messages"), "{err}");
        let year = chrono::Local::now().format("%Y").to_string();
        assert_eq!(
            t.render(&msgs(&[("user", "  hi  ")]), false).unwrap(),
            format!("{year} hi")
        );
        let bad =
            ChatTemplate::new("{{ strftime_now('%Q%') }}", TemplateTokens::default(), "t").unwrap();
        assert!(bad.render(&[], false).is_err());
        assert!(
            ChatTemplate::new("{% for %}", TemplateTokens::default(), "x.jinja")
                .unwrap_err()
                .to_string()
                .contains("x.jinja")
        );
    }

    #[test]
    fn blocks_are_trimmed_like_transformers_and_loops_are_bounded() {
        let t = ChatTemplate::new(
            "{% for m in messages %}\n  {% if m %}{{ m.role }}:{{ m.content }}\n  {% endif %}\n{% endfor %}",
            TemplateTokens::default(),
            "t",
        )
        .unwrap();
        assert_eq!(
            t.render(&msgs(&[("user", "a"), ("assistant", "b")]), false)
                .unwrap(),
            "user:a\nassistant:b\n"
        );
        let forever = ChatTemplate::new(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            TemplateTokens::default(),
            "t",
        )
        .unwrap();
        assert!(forever.render(&[], false).is_err());
    }
}
