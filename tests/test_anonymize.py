"""Anonymisation generalises: a planted corpus of identifiers written every common way, none survive;
counseling words are not blanked; on the real sample every name placeholder replaces a name-shaped word."""

from __future__ import annotations

import difflib
import re
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.data import formats
from orchestrator.data.anonymize import SURNAMES, anonymize
from orchestrator.data.clean import normalize_text

FIXTURES = Path(__file__).parent / "fixtures/cpsycoun"

# (sentence, the part that must not survive): phones with separators, spaces, +86/0086, landlines and
# parentheses, ids, e-mails, QQ/WeChat, URLs, bank cards, and names introduced in many ways.
PLANTED = [
    ("我的手机号是138-1234-5678，有事找我。", "1234"),
    ("电话：138 1234 5678", "5678"),
    ("可以打+86 139 8765 4321联系我", "8765"),
    ("号码是0086-13687654321", "13687654321"),
    ("我妈的电话+8615811112222一直打不通", "15811112222"),
    ("家里座机010-87654321", "87654321"),
    ("学校电话是(021)6543-2100", "6543"),
    ("拨打（0755）23456789", "23456789"),
    ("手机 136.1234.5678", "136.1234"),
    ("手机号：一三八一二三四五六七八", "一三八一二三四五六七八"),
    ("我的QQ是 123456789", "123456789"),
    ("扣扣号：98765432", "98765432"),
    ("加我微信 zhang_san2008 聊", "zhang_san2008"),
    ("vx：LiMing_1999", "LiMing_1999"),
    ("我的邮箱是 xiaoming.wang@163.com", "xiaoming.wang"),
    ("发到 abc123@qq.com 就行", "abc123"),
    ("身份证号11010519900307123X", "11010519900307123X"),
    ("身份证 440301 19951231 2345", "19951231"),
    ("学号：2021012345", "2021012345"),
    ("我的学号是B20190123", "B20190123"),
    ("准考证号 123456789012", "123456789012"),
    ("网址 https://weibo.com/u/123456 上有我的日记", "weibo.com/u/123456"),
    ("我在 www.douban.com/people/sadgirl 写东西", "sadgirl"),
    ("我的博客 myblog.cn/diary", "myblog.cn"),
    ("银行卡 6222021234567890123 被冻结了", "6222021234567890123"),
    ("我叫李小明，今年高二。", "李小明"),
    ("我的名字是王芳。", "王芳"),
    ("大家都叫我小雨。", "小雨"),
    ("我姓欧阳，单名一个锋字", "欧阳"),
    ("我的同桌陈静总是欺负我", "陈静"),
    ("班主任张建国老师找我谈话", "张建国"),
    ("我和男朋友刘洋分手了", "刘洋"),
    ("室友赵婷婷半夜哭", "赵婷婷"),
    ("我表哥孙浩然说我想太多", "孙浩然"),
    ("妈妈周丽华总是骂我", "周丽华"),
    ("黄老师说我成绩下滑了", "黄"),
    ("林晓雯是我最好的朋友", "林晓雯"),
    ("昨天何俊杰约我出去", "何俊杰"),
    ("小梅说她也想过死", "小梅"),
    ("我跟郭子涵吵架了", "郭子涵"),
    ("我是高三的吴思远，", "吴思远"),
    ("本人杨帆，大二学生", "杨帆"),
    ("爸爸马国强喝酒后打人", "马国强"),
    ("隔壁班的胡一菲很优秀", "胡一菲"),
    ("诸葛明说我是怪人", "诸葛明"),
    ("辅导员徐志刚让我休学", "徐志刚"),
    ("我朋友阿杰也有抑郁", "阿杰"),
    ("前任叫何晴，她离开了我", "何晴"),
    ("心理老师宋雨萱推荐我来的", "宋雨萱"),
    ("我弟弟叫朱子轩", "朱子轩"),
    ("我的微信号是13912345678", "13912345678"),
    ("联系电话 0571-8888 6666", "8888"),
    ("她的电话是159-0000-1111", "159-0000"),
    ("我女朋友叫唐诗雨", "唐诗雨"),
    ("我的小名叫豆豆", "豆豆"),
    ("有事打我电话 186 0012 3456 吧", "0012"),
    ("我爸手机+86-177-1234-9876", "1234-9876"),
    ("宿舍电话 020-3861 2345", "3861"),
    ("请拨0086 13311112222找我", "13311112222"),
    ("我的手机：15000001111，晚上再打", "15000001111"),
    ("学生证号码：20200304", "20200304"),
    ("学籍号 G440301200501011234", "G440301200501011234"),
    ("我QQ: 3344556677", "3344556677"),
    ("微信: cxy-20030915", "cxy-20030915"),
    ("邮箱 sadboy_2005@outlook.com", "sadboy_2005"),
    ("我的身份证是 32010619880815002X", "32010619880815002X"),
    ("抖音号是 https://v.douyin.com/abc123/", "abc123"),
    ("我叫陈一鸣，是初二的学生", "陈一鸣"),
    ("我的名字叫黄思琪。", "黄思琪"),
    ("同学们都叫我阿明。", "阿明"),
    ("我和同桌谢雨桐闹翻了", "谢雨桐"),
    ("数学老师王建军当众批评我", "王建军"),
    ("我舍友叫罗佳怡", "罗佳怡"),
    ("爸爸是杨志强，他经常不在家", "杨志强"),
    ("我暗恋的人叫林子墨", "林子墨"),
    ("班长邓晓峰经常嘲笑我", "邓晓峰"),
    ("我姐姐许婉清很优秀", "许婉清"),
    ("我是李思远，今年十六岁", "李思远"),
    ("好朋友郑可欣转学了", "郑可欣"),
    ("我妈总拿我跟表姐韩雪比", "韩雪"),
]


def test_the_planted_corpus_is_large_and_varied():
    assert len(PLANTED) >= 50
    assert sum("叫" in s or "名字" in s for s, _ in PLANTED) < len(PLANTED) / 4  # names mostly without a cue


@pytest.mark.parametrize(("sentence", "secret"), PLANTED)
def test_no_planted_identifier_survives(sentence, secret):
    out = anonymize(normalize_text(sentence))
    assert secret not in out, out
    assert "[" in out


COUNSELING = [
    "谢谢您，祝您和家人幸福快乐！",
    "明白了，谢谢你们的帮助。",
    "我在普通班，压力很大，考试时焦虑。",
    "我是高二女生，这段困惑期很难熬。",
    "担心会被老师叫起来回答问题。",
    "我妈妈叫我去学习，我向老师请教。",
    "那阿姨想让我多休息，我觉得很有安全感。",
    "心理咨询师教授了我放松的方法，我买了一只毛绒熊。",
    "我希望能早日康复，阳光一点，温暖一点。",
    "常常觉得自己很平静，也很乐观。",
    "我今年16岁，每天学习10个小时，2023年高考。",
    "我考了第3名，班里有45个人。",
]


@pytest.mark.parametrize("sentence", COUNSELING)
def test_counseling_words_are_not_blanked(sentence):
    assert anonymize(normalize_text(sentence)) == normalize_text(sentence)


def test_on_the_real_sample_every_name_placeholder_replaces_a_name_shaped_word():
    """Measured on real CPsyCoun text: what a [NAME] replaced starts with a surname or 小/阿 (no common words)."""
    replaced: Counter = Counter()
    counts: Counter = Counter()
    for path in sorted(FIXTURES.rglob("*")):
        if path.suffix not in (".txt", ".json"):
            continue
        for dialogue in formats.read(path):
            for turn in dialogue.turns:
                before = normalize_text(turn.text)
                after = anonymize(before, counts)
                for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
                    if op != "equal":
                        replaced[before[i1:i2]] += 1
                        assert re.fullmatch(r"(?:和)?\[NAME\]", after[j1:j2]) or "[" in after[j1:j2], after[j1:j2]
    assert counts["NAME"] >= 5, counts  # the sample has named clients and counselors
    for original in replaced:
        core = original.removeprefix("和")
        doubled = len(core) == 2 and core[0] == core[1]  # 莎莎, 萌萌: nicknames after a greeting
        assert core[:1] in SURNAMES or core[:2] in SURNAMES or core[:1] in "小阿老" or doubled, (original, replaced)


# Written by someone else (a break pass): names in many more forms, with the part that must not survive.
THIRD_PARTY_NAMES = [
    ("我妈妈叫王秀英，她总是管我很严。", "王秀英"),
    ("我们班主任张建国老师对我很凶。", "张建国"),
    ("欧阳娜娜是我最好的朋友。", "娜娜"),
    ("昨天司马晓峰又骂我了。", "晓峰"),
    ("大家都叫我胖虎，我很讨厌这个外号。", "胖虎"),
    ("我是林小雨，来自福建。", "林小雨"),
    ("阿强是我发小，他去年去世了。", "阿强"),
    ("我爸爸王大海喝醉了就打人。", "王大海"),
    ("张三和李四都是我的室友。", "张三"),
    ("诸葛明亮总是抄我的作业。", "明亮"),
    ("我给上官婉儿写了一封信。", "婉儿"),
    ("我叫小雪，是一名高三学生。", "小雪"),
    ("我们宿舍的王芳芳很孤立我。", "王芳芳"),
    ("我的网名叫孤独的鲸，在贴吧很出名。", "孤独的鲸"),
    ("我女朋友小美说要和我分手。", "小美"),
    ("杨洋老师说我成绩下滑太厉害。", "杨洋"),
    ("我上司Tom一直针对我。", "Tom"),
    ("我室友Kevin Zhang每天很吵。", "Kevin"),
    ("我婆婆李桂兰天天挑刺。", "李桂兰"),
    ("闺蜜林琳把我的秘密告诉了别人。", "林琳"),
    ("他叫我去找宋雨琦道歉。", "宋雨琦"),
    ("我的名字叫做李明明。", "李明明"),
    ("我叫李明明啊。", "李明明"),
    ("我的英文名是Lucy。", "Lucy"),
    ("我姓王，叫王建军。", "建军"),
    ("老王总是欺负我。", "老王"),
    ("张总骂了我一顿。", "张总"),
    ("隔壁班的刘洋洋跟我表白了。", "刘洋洋"),
    ("我后妈刘红总打我。", "刘红"),
    ("我舅舅李建华在医院。", "李建华"),
    ("数学老师姓吴，叫吴海。", "吴海"),
    ("我最好的朋友梓涵搬走了。", "梓涵"),
    ("我跟子轩闹翻了。", "子轩"),
    ("她叫思彤，是我初中同学。", "思彤"),
    ("我叫Ann，在上海读书。", "Ann"),
    ("司徒雷登是我们的校友。", "雷登"),
    ("慕容雪说我很自私。", "慕容雪"),
    ("令狐冲是我的网名。", "令狐冲"),
    ("韩梅梅和我吵架了。", "韩梅梅"),
    ("姓名：李强，电话：13812345678", "李强"),
    ("联系人：张伟", "张伟"),
    ("我的导师黄教授压榨我。", "黄教授"),
    ("刘某某一直骚扰我。", "刘某"),
    ("你好，小强。我能理解你。", "小强"),
    ("我是萌萌，今年高一。", "萌萌"),
    ("您好，谢校长，我想请教您。", "谢校长"),
    ("郑老师说我很努力。", "郑老师"),
    ("张先生，您好。", "张先生"),
    ("我叫李\u200b明明。", "明明"),
    # a third author's
    ("王梓萱总是排挤我。", "梓萱"),
    ("陈语嫣不理我。", "语嫣"),
    ("刘欣怡总是排挤我。", "欣怡"),
    ("是邓文静老师推荐我来这里的。", "文静"),
    ("我们辅导员是个女的，姓郭，对我很凶。", "郭"),
    ("你好，王小姐，感谢你前来咨询。", "王小姐"),
]
# ... and identifiers with a shape: no digit run of 5+, no e-mail, no account id may survive.
THIRD_PARTY_IDS = [
    "我的手机号是138 1234 5678，有事可以打给我。",
    "你可以打1381234-5678找我妈妈。",
    "我在国外读书，号码+86 138-1234-5678。",
    "学校心理中心电话(010)12345678，工作日开放。",
    "家里座机010 1234 5678，晚上一般有人。",
    "我打过400-820-8820那个热线，没人接。",
    "有问题发邮件到ZhangWei@QQ.COM吧。",
    "我的微信号就是手机号13912345678。",
    "你可以联系0755-8888-6666，那是我家。",
    "我的号码是 0086 139 1234 5678",
    "我住在北京市海淀区中关村大街27号3单元502室。",
    "我的银行卡号6222 0212 3456 7890 123被盗刷了。",
    "TEL:13812345678",
    "（0755）88886666",
    "0755-88886666转123",
    "我家电话 8888 6666",
    "打8888-6666找我",
    "wei xin: zhang_san_99",
    "我的抖音号是douyin12345",
    "我的身份证号码是 110101 19900307 1234",
    "我的身份证号码是 1101 0119 9003 0712 34",
    "身份证：110101 1990 0307 1234",
    "我的电话是138 - 1234 - 5678。",
    "打1 3 8 1 2 3 4 5 6 7 8找我",
    "我手机幺三八一二三四五六七八",
    "我的号码是(+86)13812345678",
    "+852 9123 4567",
    "+1 (415) 555-2671",
    "V：zhangsan99",
    "微 信：zhangsan99",
    "加我薇：zhangsan99",
    "我的邮箱是zhangwei at 163 dot com",
    "我的电话是138\u200b1234\u200b5678",
    "139\u20101234\u20105678",
    "139\u22121234\u22125678",
    "学号：2021 1234 56",
    "我的手机号是138，1234，5678，晚上打。",
    "我的号码是幺三八、幺二三四、五六七八。",
    "手机号码：138--1234--5678，有急事找我。",
    "我手机壹叁捌壹贰叁肆伍陆柒捌，不要告诉我妈。",
    "加我微信搜一下 lucky_dog88 就能找到我。",
    "加V lonely_fish99 我们私聊。",
    "抖音搜 sadgirl_99 就是我。",
    "我邮箱是 sadcat2006#163.com，把#换成@就行。",
    "有事发我邮箱 xiaoyu 艾特 qq 点 com 吧。",
    "我住在幸福小区7栋2单元301，楼下就是学校。",
    "我家在阳光花园3期12幢502室。",
    "我的车牌号是粤B12345，他一直跟踪我。",
    "身份证后六位是12301X",
    "护照号码E12345678",
]


@pytest.mark.parametrize(("sentence", "secret"), THIRD_PARTY_NAMES)
def test_names_written_by_someone_else_do_not_survive(sentence, secret):
    out = anonymize(normalize_text(sentence))
    assert secret not in out, out


@pytest.mark.parametrize("sentence", THIRD_PARTY_IDS)
def test_identifiers_written_by_someone_else_do_not_survive(sentence):
    out = anonymize(normalize_text(sentence))
    assert not re.search(r"\d(?:\D?\d){4}", out), out
    assert not re.search(r"[一二三四五六七八九零〇幺]{5}", out), out
    assert not re.search(r"zhang|douyin|xiaoyu|sadcat|lucky|lonely|sadgirl|@[A-Za-z0-9]|粤B", out, re.I), out


THIRD_PARTY_CLEAN = [
    "我今年17岁，读高二，最近成绩一直在下滑。",
    "期末考试我只考了452分，离目标差了很多。",
    "我每天晚上12点才睡，早上6点半就要起床。",
    "高考还有100天，我越来越焦虑了。",
    "我从2019年开始就一直很抑郁。",
    "我的GPA只有2.8，担心找不到工作。",
    "宝贝，妈妈爱你，这是我妈常说的话。",
    "我妈是老师，我爸是工人。",
    "我的名字是爸爸取的，我不喜欢。",
    "我叫了外卖，但是吃不下。",
    "我姓的这个姓很少见。",
    "丈夫是高中同学，我们和班主任关系很好。",
    "微风和花香让我平静，她和师兄们相处很好。",
    "我和我老公是大学同学，我把小熊放在床上。",
    "老师说有一种叫做沙盘游戏的方法。",
    "谢谢您关心我，但我想一个人待着。",
    "她当着全班同学的面批评我。",
    "2019-2023年我一直在读书。",
    "周末的安排包括补课、写作业和练琴。",
    "舅妈说我是白眼狼。",
    "I am a developer and I love you.",
]


def test_a_name_found_once_is_replaced_everywhere_in_the_dialogue():
    from orchestrator.data.clean import CleanStats, clean_dialogue
    from orchestrator.data.dialogue import Dialogue, Turn

    turns = (
        Turn("user", "我叫小凡，今年高二。"),
        Turn("assistant", "你好。"),
        Turn("user", "我和小凡吵架了，小凡不理我"),
    )
    cleaned = clean_dialogue(Dialogue("d", "test", turns), CleanStats())
    assert "小凡" not in "".join(t.text for t in cleaned.turns)
